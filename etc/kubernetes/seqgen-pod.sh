#!/bin/sh
# seqgen-pod.sh ROLE PROGRAM [ARGS...]: run a seqgen daemon of a StatefulSet pod with the
# flags that follow from the pod's name (docs/operations.md, "Kubernetes").
#
#   ROLE server  appends --instance ORDINAL+1 --instances $SEQGEN_INSTANCES, and
#                --fenced when its --data directory holds no store yet: a new volume
#                (a new cluster, or a replacement for a lost one) issues nothing until
#                the admin's POST /unfence (new cluster) or POST /recover (replacement)
#   ROLE admin   appends --peer http://SET-I.$SEQGEN_SERVICE:$SEQGEN_ADMIN_PORT for every
#                other ordinal I of 0 .. SEQGEN_INSTANCES-1 (the StatefulSet's stable names)
#
# SEQGEN_POD_NAME is the pod's name, SET-ORDINAL (from the downward API; the host name
# when unset). SEQGEN_INSTANCES is the cluster's instance count, FIXED FOREVER: a pod
# whose ordinal has no instance in it refuses to start, because scaling the StatefulSet
# does not change the instance count.
set -eu

fail() {
    echo "seqgen-pod.sh: $*" >&2
    exit 2
}

[ "$#" -ge 2 ] || fail "usage: seqgen-pod.sh server|admin PROGRAM [ARGS...]"
role=$1
shift
pod=${SEQGEN_POD_NAME:-$(hostname)}
set_name=${pod%-*}
ordinal=${pod##*-}
case $ordinal in
    '' | *[!0-9]* | 0?*) fail "pod name '$pod' does not end in -ORDINAL (is this a StatefulSet pod?)" ;;
esac
[ "$set_name" != "$pod" ] || fail "pod name '$pod' does not end in -ORDINAL (is this a StatefulSet pod?)"
instances=${SEQGEN_INSTANCES:-}
case $instances in
    2 | 3) ;;
    *) fail "SEQGEN_INSTANCES must be 2 or 3, not '$instances'" ;;
esac
instance=$((ordinal + 1))
if [ "$instance" -gt "$instances" ]; then
    fail "pod $pod would be instance $instance, but SEQGEN_INSTANCES is $instances: scaling the" \
        "StatefulSet does not change the instance count (docs/operations.md, Kubernetes)"
fi

case $role in
    server)
        data=
        previous=
        for arg in "$@"; do
            [ "$previous" != --data ] || data=$arg
            previous=$arg
        done
        [ -n "$data" ] || fail "the server's command has no --data DIR"
        if [ ! -e "$data/seqgen.db" ]; then
            echo "seqgen-pod.sh: no store in $data yet: starting fenced (POST /unfence on a new" \
                "cluster, POST /recover for a replaced volume; docs/operations.md, Kubernetes)" >&2
            set -- "$@" --fenced
        fi
        exec "$@" --instance "$instance" --instances "$instances"
        ;;
    admin)
        service=${SEQGEN_SERVICE:?SEQGEN_SERVICE must name the headless Service of the StatefulSet}
        port=${SEQGEN_ADMIN_PORT:-6411}
        i=0
        while [ "$i" -lt "$instances" ]; do
            if [ "$i" -ne "$ordinal" ]; then
                set -- "$@" --peer "http://$set_name-$i.$service:$port"
            fi
            i=$((i + 1))
        done
        exec "$@"
        ;;
    *)
        fail "ROLE must be server or admin, not '$role'"
        ;;
esac
