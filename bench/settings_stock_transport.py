"""The bench settings (production's) with kombu's stock Redis transport in place of the platform's
(jobs.brokers.redis_transport): benchmark 12 compares the two with everything else equal, so the
transport options stay as they are too (stock kombu ignores the one it does not know,
`unacked_heartbeat_interval`)."""

from bench.settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT = "redis"
