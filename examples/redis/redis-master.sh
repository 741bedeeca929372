#!/bin/sh
# vrrp-agent notify_master: this node now holds the VIP, so its Redis must
# take writes. keepalived equivalent: notify_master "/etc/keepalived/redis-master.sh 6379"
#
#   redis-master.sh PORT
#
# Runs as root with a cleared environment (PATH only). If Redis needs a
# password, put it in /etc/vrrp-agent/redis.pass (mode 0600).
set -u
PORT="${1:-6379}"
[ -r /etc/vrrp-agent/redis.pass ] && REDISCLI_AUTH="$(cat /etc/vrrp-agent/redis.pass)" && export REDISCLI_AUTH

log() { logger -t vrrp-redis "$*" 2>/dev/null || echo "vrrp-redis: $*" >&2; }

# redis-cli exits 0 even on an error reply: look at the reply itself.
reply="$(timeout 5 redis-cli -p "$PORT" REPLICAOF NO ONE 2>&1)"
if [ "$reply" = "OK" ]; then
    log "MASTER: redis on port $PORT promoted (REPLICAOF NO ONE)"
else
    log "MASTER: promoting redis on port $PORT failed: $reply"
    exit 1
fi
