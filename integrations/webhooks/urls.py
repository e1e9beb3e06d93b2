"""The webhooks page (namespace ``web``, included from scrm/web_urls.py)."""

from django.urls import path

from integrations.webhooks import views

urlpatterns = [
    path("settings/webhooks/", views.webhook_list, name="webhooks"),
    path("settings/webhooks/<int:endpoint_id>/toggle/", views.webhook_toggle,
         name="webhooks-toggle"),
    path("settings/webhooks/<int:endpoint_id>/delete/", views.webhook_delete,
         name="webhooks-delete"),
    path("settings/webhooks/<int:endpoint_id>/replay/", views.webhook_replay,
         name="webhooks-replay"),
    path("settings/webhooks/deliveries/<int:delivery_id>/replay/",
         views.webhook_delivery_replay, name="webhooks-delivery-replay"),
]
