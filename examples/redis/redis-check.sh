#!/bin/sh
# vrrp-agent exec check: succeeds only if Redis answers PING with PONG.
# `redis-cli ping` alone is not enough: redis-cli exits 0 on error replies
# too (-LOADING while a replica loads its data set, -NOAUTH, -MASTERDOWN).
#
#   redis-check.sh PORT
set -u
PORT="${1:-6379}"
[ -r /etc/vrrp-agent/redis.pass ] && REDISCLI_AUTH="$(cat /etc/vrrp-agent/redis.pass)" && export REDISCLI_AUTH
[ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = "PONG" ]
