import factory
from django.contrib.auth import get_user_model

from scrm.models import Brand, Role, StaffMembership, Store, Tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"brand-{n}")
    name = factory.Sequence(lambda n: f"品牌{n}")


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"子品牌{n}")
    code = factory.Sequence(lambda n: f"b{n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    tenant = factory.SubFactory(TenantFactory)
    code = factory.Sequence(lambda n: f"SH{n:03d}")
    name = factory.Sequence(lambda n: f"上海{n}号店")
    region = "华东"
    province = "上海"
    city = "上海"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("pw-for-tests")
    is_staff = True


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.OWNER
    display_name = factory.Sequence(lambda n: f"员工{n}")
