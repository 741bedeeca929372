#!/bin/sh
# vrrp-agent notify_backup (and notify_stop): the peer holds (or will hold)
# the VIP, so this node's Redis must replicate from it and refuse writes.
# keepalived equivalent: notify_backup "/etc/keepalived/redis-backup.sh 192.0.2.2 6379"
#
#   redis-backup.sh PEER PORT
#
# REPLICAOF makes this Redis drop its data set and resynchronise from PEER:
# only the node holding the VIP has the data clients wrote. Runs as root with
# a cleared environment (PATH only). If Redis needs a password, put it in
# /etc/vrrp-agent/redis.pass (mode 0600); the replica then also needs
# `masterauth` in redis.conf.
set -u
PEER="${1:?usage: redis-backup.sh PEER PORT}"
PORT="${2:-6379}"
[ -r /etc/vrrp-agent/redis.pass ] && REDISCLI_AUTH="$(cat /etc/vrrp-agent/redis.pass)" && export REDISCLI_AUTH

log() { logger -t vrrp-redis "$*" 2>/dev/null || echo "vrrp-redis: $*" >&2; }

reply="$(timeout 5 redis-cli -p "$PORT" REPLICAOF "$PEER" "$PORT" 2>&1)"
case "$reply" in
    OK*)
        log "BACKUP: redis on port $PORT now replicates from $PEER:$PORT"
        ;;
    *)
        log "BACKUP: demoting redis on port $PORT failed: $reply"
        exit 1
        ;;
esac
