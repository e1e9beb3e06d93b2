from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from scrm.access import MEMBERS_READ
from scrm.api.serializers import JobOutput
from scrm.api.views import TenantApiView
from scrm.models import Job


class JobDetailApi(TenantApiView):
    """Progress of a background job (bulk tagging, exports...)."""

    required_scopes = {"*": MEMBERS_READ}

    @extend_schema(responses=JobOutput, operation_id="jobs_retrieve")
    def get(self, request, job_id: int):
        job = Job.objects.filter(pk=job_id).first()
        if job is None:
            raise NotFound(_("未找到。"))
        return Response(JobOutput(job).data)
