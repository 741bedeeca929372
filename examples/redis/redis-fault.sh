#!/bin/sh
# vrrp-agent notify_fault: a tracked check failed (Redis dead or not
# answering PING, or a tracked interface down); the VIP has gone to the peer.
# keepalived equivalent: notify_fault "/etc/keepalived/redis-fault.sh 192.0.2.2 6379"
#
#   redis-fault.sh PEER PORT
#
# Best effort: if this Redis still answers (the fault was an interface, or a
# slow PING), make it a replica of the peer at once, so clients that bypass
# the VIP cannot write into a second master. If it is dead, nothing to do:
# when it is back, the instance leaves FAULT as BACKUP and notify_backup
# makes it a replica.
set -u
PEER="${1:?usage: redis-fault.sh PEER PORT}"
PORT="${2:-6379}"
[ -r /etc/vrrp-agent/redis.pass ] && REDISCLI_AUTH="$(cat /etc/vrrp-agent/redis.pass)" && export REDISCLI_AUTH

log() { logger -t vrrp-redis "$*" 2>/dev/null || echo "vrrp-redis: $*" >&2; }

reply="$(timeout 2 redis-cli -p "$PORT" REPLICAOF "$PEER" "$PORT" 2>&1)"
case "$reply" in
    OK*) log "FAULT: redis on port $PORT still answers; demoted to a replica of $PEER:$PORT" ;;
    *) log "FAULT: redis on port $PORT not answering ($reply)" ;;
esac
exit 0
