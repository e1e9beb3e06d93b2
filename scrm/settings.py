"""One settings module, every value from the environment (django-environ).

Defaults are the quick start's: SQLite in ./var, tasks run in-process, local-memory cache.
Production sets DATABASE_URL (PostgreSQL), REDIS_URL, SECRET_KEY and the field keys.
"""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="quickstart-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Keys for personal data at rest: Fernet keys (first one encrypts, all decrypt, so keys
# rotate by prepending) and a separate HMAC key for the blind index used in lookups.
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["quickstart-field-key-change-me"]
)
BLIND_INDEX_KEY = env.str("BLIND_INDEX_KEY", default="quickstart-blind-index-key-change-me")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "scrm",
    "members",
    "tags",
    "points",
    "campaigns.rfm",
    "campaigns.coupons",
    "campaigns.referrals",
    "campaigns",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "scrm.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "scrm.urls"
WSGI_APPLICATION = "scrm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scrm.navigation.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'scrm.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Our backend sets the tenant for row-level security on every connection.
    DATABASES["default"]["ENGINE"] = "scrm.db"
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME", default=None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "scrm",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# The operator dashboard's own login; the admin keeps its login page.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "scrm" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Bulk order ingest accepts up to 1,000 orders in one body.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=8 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scrm.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["scrm.api.permissions.HasTenant"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "scrm.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "scrm.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "私域 SCRM API",
    "DESCRIPTION": (
        "REST API for partner systems: members (OneID), orders and refunds, tags and "
        "audiences, points, tiers and the points mall. "
        "Authenticate with `Authorization: Bearer <api key>`. Every POST accepts an "
        "`Idempotency-Key` header."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the installed drf-spectacular-sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ChannelCodeKindEnum": "integrations.models.channels.ChannelCode.Kind",
        "LossAlertKindEnum": "integrations.models.callbacks.LossAlert.Kind",
        "CouponTemplateKindEnum": "campaigns.coupons.models.CouponTemplate.Kind",
        "CampaignActionKindEnum": "campaigns.models.ActionKind",
    },
}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# Seconds the dashboard keeps a tenant's aggregates (members by channel, tiers, liability...).
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=300)

IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=7 * 24)

# WeChat and WeCom.  Empty base URLs: the real platforms.  The sandbox (python -m
# integrations.sandbox serve) serves both on one port: http://127.0.0.1:8800.
WECHAT_API_BASE_URL = env.str("WECHAT_API_BASE_URL", default="")
WECOM_API_BASE_URL = env.str("WECOM_API_BASE_URL", default="")
# Calls per account (OA appid or WeCom corpid) across every worker, and where the counts
# live (Redis in production, shared by the workers).
WECHAT_RATE_LIMIT = env.str("WECHAT_RATE_LIMIT", default="200/second")
WECHAT_RATE_LIMIT_STORAGE = env.str("WECHAT_RATE_LIMIT_STORAGE",
                                    default=REDIS_URL or "memory://")
# The public base URL WeChat and WeCom send callbacks to and OAuth redirects back to.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# A customer may receive this many WeCom mass messages per period (WeCom's rule has been
# "4 per calendar month" and "1 per day"): month or day.
WECOM_MASS_LIMIT = env.int("WECOM_MASS_LIMIT", default=4)
WECOM_MASS_PERIOD = env.str("WECOM_MASS_PERIOD", default="month")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Periodic jobs; the database scheduler copies these into django-celery-beat's tables, where
# operators can change them in the admin.
CELERY_BEAT_SCHEDULE = {
    "member-stats-reconcile": {
        "task": "members.tasks.member_stats_reconcile_all_task",
        "schedule": 24 * 3600,
        "options": {"expires": 3600},
    },
    "audience-fold": {
        "task": "tags.tasks.audience_fold_all_task",
        "schedule": 60,
        "options": {"expires": 55},
    },
    "audience-rebuild": {
        "task": "tags.tasks.audience_rebuild_all_task",
        "schedule": 24 * 3600,
        "options": {"expires": 3600},
    },
    "tag-rules-evaluate": {
        "task": "tags.tasks.tag_rules_evaluate_all_task",
        "schedule": 24 * 3600,
        "options": {"expires": 3600},
    },
    "idempotency-records-purge": {
        "task": "scrm.tasks.idempotency_records_purge_task",
        "schedule": 3600,
        "options": {"expires": 600},
    },
    "points-expire": {
        "task": "points.tasks.points_expire_all_task",
        "schedule": 3600,
        "options": {"expires": 1800},
    },
    "points-birthdays": {
        "task": "points.tasks.points_award_birthdays_all_task",
        "schedule": crontab(hour=0, minute=10),
        "options": {"expires": 6 * 3600},
    },
    "coupons-birthdays": {
        "task": "campaigns.coupons.tasks.coupons_issue_birthdays_all_task",
        "schedule": crontab(hour=0, minute=20),
        "options": {"expires": 6 * 3600},
    },
    "coupons-expire": {
        "task": "campaigns.coupons.tasks.coupons_expire_all_task",
        "schedule": 3600,
        "options": {"expires": 1800},
    },
    "campaigns-dispatch": {
        "task": "campaigns.tasks.campaigns_dispatch_all_task",
        "schedule": 60,
        "options": {"expires": 55},
    },
    "automation-daily": {
        "task": "campaigns.tasks.automation_daily_all_task",
        "schedule": crontab(hour=9, minute=0),
        "options": {"expires": 6 * 3600},
    },
    "tiers-review": {
        "task": "points.tasks.tiers_review_all_task",
        "schedule": crontab(hour=2, minute=0),
        "options": {"expires": 6 * 3600},
    },
    "points-ledger-check": {
        "task": "points.tasks.points_ledger_check_all_task",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 3600},
    },
    "referrals-sweep": {
        "task": "campaigns.referrals.tasks.referrals_sweep_all_task",
        "schedule": 3600,
        "options": {"expires": 1800},
    },
    "rfm-lifecycle": {
        "task": "campaigns.rfm.tasks.rfm_lifecycle_all_task",
        "schedule": crontab(hour=4, minute=0),
        "options": {"expires": 6 * 3600},
    },
}
