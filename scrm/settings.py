"""One settings module, every value from the environment (django-environ).

Defaults are the quick start's: SQLite in ./var, tasks run in-process, local-memory cache.
Production sets DATABASE_URL (PostgreSQL), REDIS_URL, SECRET_KEY and the field keys.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

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
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "scrm",
    "members",
    "tags",
    "points",
    "campaigns.rfm",
    "campaigns.coupons",
    "campaigns.referrals",
    "campaigns",
    "integrations",
    "integrations.transfers",
    "integrations.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "scrm.two_factor.TwoFactorMiddleware",
    "scrm.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
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

# Cookies, HTTPS and headers.  Secure cookies and HSTS follow HTTPS (on unless DEBUG), so the
# quick start over http://127.0.0.1 still signs in; production runs behind HTTPS.
HTTPS = env.bool("HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)  # usually the proxy's job
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Same-origin assets only (installed from registries, never a CDN).  Inline <script> and
# <style> need the request's nonce; style attributes stay allowed (progress bars' widths).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-elem": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", *env.list("CSP_IMG_SRC", default=[])],
        "connect-src": [SELF],
        "font-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, *env.list("CSP_FORM_ACTION", default=[])],
        "frame-ancestors": [NONE],
    },
}

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
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out logins (scrm/lockout.py)
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
# One login from one address: a stranger guessing cannot lock the owner out everywhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "scrm.lockout.lockout_response"
# The client address is REMOTE_ADDR (a proxy in front sets it); a client-sent
# X-Forwarded-For would let anyone pick a fresh address per try.
AXES_IPWARE_META_PRECEDENCE_ORDER = env.list("LOGIN_LOCKOUT_IP_HEADERS", default=["REMOTE_ADDR"])
AXES_VERBOSE = False
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="私域 SCRM")

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
    "DEFAULT_THROTTLE_CLASSES": [
        "scrm.api.throttling.ApiKeyThrottle",
        "scrm.api.throttling.ClientIpThrottle",
    ],
}
# API rate limits (scrm/api/throttling.py), in limits' notation ("1200/minute", "50/second"):
# per API key, per key for the bulk endpoints, and per client IP for everything else.
# Overrides give partners' keys their own rates, by key prefix:
# API_RATE_LIMIT_KEY_OVERRIDES="ab12cd=6000/minute,ef34gh=200/second".
API_RATE_LIMIT_ENABLED = env.bool("API_RATE_LIMIT_ENABLED", default=True)
API_RATE_LIMIT_STORAGE = env.str("API_RATE_LIMIT_STORAGE", default=REDIS_URL or "memory://")
API_RATE_LIMIT_KEY = env.str("API_RATE_LIMIT_KEY", default="1200/minute")
API_RATE_LIMIT_BULK = env.str("API_RATE_LIMIT_BULK", default="120/minute")
API_RATE_LIMIT_IP = env.str("API_RATE_LIMIT_IP", default="300/minute")
API_RATE_LIMIT_KEY_OVERRIDES = env.dict("API_RATE_LIMIT_KEY_OVERRIDES", default={})
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
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scrm.api.schema.error_responses",  # 400/401/403/404/409/413/429 everywhere
    ],
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
# Seconds between runs of the warmer that recomputes every tenant's dashboard reports (shorter
# than DASHBOARD_CACHE_SECONDS, so owners read figures no older than they would otherwise).
DASHBOARD_WARM_SECONDS = env.int("DASHBOARD_WARM_SECONDS", default=240)

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

# Outbound webhooks (integrations/webhooks): per-request timeout, retries (exponential backoff
# with jitter from RETRY_BASE up to RETRY_MAX, at most MAX_ATTEMPTS), automatic disabling
# (failing continuously for DISABLE_AFTER_FAILURES attempts over at least
# DISABLE_AFTER_HOURS), how long relayed events and their delivery log are kept, and whether
# endpoints may point at loopback or private addresses (tests, benchmarks, on-premise).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=15)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=6 * 3600)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
WEBHOOK_DISABLE_AFTER_HOURS = env.float("WEBHOOK_DISABLE_AFTER_HOURS", default=24)
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=7)
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=DEBUG)
# Concurrent requests per endpoint (kept-alive connections) and in all, per sender.
WEBHOOK_CONNECTIONS_PER_ENDPOINT = env.int("WEBHOOK_CONNECTIONS_PER_ENDPOINT", default=16)
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=500)

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
    "webhooks-relay": {
        "task": "integrations.webhooks.tasks.webhooks_relay_task",
        "schedule": 10,
        "options": {"expires": 9},
    },
    "webhooks-deliver": {
        "task": "integrations.webhooks.tasks.webhooks_deliver_task",
        "schedule": 10,
        "options": {"expires": 9},
    },
    "webhooks-purge": {
        "task": "integrations.webhooks.tasks.webhooks_purge_task",
        "schedule": crontab(hour=5, minute=0),
        "options": {"expires": 6 * 3600},
    },
    "rfm-lifecycle": {
        "task": "campaigns.rfm.tasks.rfm_lifecycle_all_task",
        "schedule": crontab(hour=4, minute=0),
        "options": {"expires": 6 * 3600},
    },
    "dashboard-reports-warm": {
        "task": "scrm.tasks.reports_warm_all_task",
        "schedule": DASHBOARD_WARM_SECONDS,
        "options": {"expires": DASHBOARD_WARM_SECONDS},
    },
}
