#!/usr/bin/env bash
# Once, on one node of the cluster: the platform's vhost and user. Usage:
#   PLATFORM_AMQP_PASSWORD=... ops/rabbitmq/setup.sh
# Then CELERY_BROKER_URL=amqp://platform:<password>@mq1:5672/platform;amqp://platform:<password>@mq2:5672/platform;amqp://platform:<password>@mq3:5672/platform
# Queues are declared by the workers (quorum queues, jobs/brokers/rabbitmq_broker.py); nothing
# else to create here.
set -euo pipefail
: "${PLATFORM_AMQP_PASSWORD:?set PLATFORM_AMQP_PASSWORD}"
VHOST="${PLATFORM_AMQP_VHOST:-platform}"
USER="${PLATFORM_AMQP_USER:-platform}"

rabbitmqctl add_vhost "$VHOST" || true
rabbitmqctl add_user "$USER" "$PLATFORM_AMQP_PASSWORD" 2>/dev/null \
  || rabbitmqctl change_password "$USER" "$PLATFORM_AMQP_PASSWORD"
rabbitmqctl set_permissions -p "$VHOST" "$USER" ".*" ".*" ".*"
# Flower reads queue lengths from the management API as this user (FLOWER_BROKER_API, by default
# the broker URL's first node and user): "management" lets it see its own vhost's queues, no more.
# The plugin itself: ops/rabbitmq/enabled_plugins in /etc/rabbitmq/ on every node, or at once:
#   rabbitmq-plugins enable rabbitmq_management
rabbitmqctl set_user_tags "$USER" management
# Quorum queues are replicated to every node when declared; a node that joins later gets no
# replica until asked: after adding one, `rabbitmq-queues grow <node> all --vhost-pattern platform`.
