/**
 * The two fixed shell programs of the container driver. They are constants:
 * every value (paths, names, the user's argv) reaches them only as positional
 * parameters, quoted as "$1" or "$@", and is never parsed as shell text.
 */

/**
 * Joins cgroups, then becomes the given command:
 * `sh -c JOIN_SCRIPT fedlab-join <cgroup.procs file>... -- <command> [args...]`.
 * Joining before the exec means everything the command forks is born inside
 * the sliver's limits.
 */
export const JOIN_SCRIPT = `
while [ "$#" -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; exec "$@"; fi
  echo "$$" > "$1" || exit 125
  shift
done
exit 125
`;

/**
 * The keeper: PID 1 of a sliver's PID namespace, run by
 * `unshare --fork --pid --mount --uts --ipc [--net] --mount-proc`.
 * Arguments: work dir, host name, directory to hide (the node manager's data
 * dir), tmpfs size (MiB), "net" or "host".
 *
 * In its private mount namespace it gives the sliver private /tmp, /var/tmp and
 * /dev/shm, hides the node manager's data directory (its store and every other
 * sliver's work directory) behind a tmpfs on which only the sliver's own work
 * directory reappears, at the same path; sets the host name, says "ready", and
 * then only reaps orphans until it is killed. When it dies the kernel kills the
 * whole namespace.
 */
export const KEEPER_SCRIPT = `
set -eu
work=$1
name=$2
hide=$3
tmpmb=$4
net=$5
{ echo -1000 > /proc/self/oom_score_adj; } 2>/dev/null || :
[ -d /dev/shm ] || mkdir -p /dev/shm
mount -t tmpfs -o "size=\${tmpmb}m,mode=1777,nosuid,nodev" fedlab-shm /dev/shm
stage=/dev/shm/.fedlab-work
mkdir "$stage"
mount --bind "$work" "$stage"
for d in /tmp /var/tmp; do
  if [ -d "$d" ]; then mount -t tmpfs -o "size=\${tmpmb}m,mode=1777,nosuid,nodev" fedlab-tmp "$d"; fi
done
if [ -d "$hide" ]; then mount -t tmpfs -o size=1m,mode=0755 fedlab-hide "$hide"; fi
mkdir -p "$work"
mount --move "$stage" "$work"
rmdir "$stage"
printf '%s' "$name" > /proc/sys/kernel/hostname
if [ "$net" = "net" ]; then ip link set lo up; fi
echo ready
exec </dev/null >/dev/null 2>&1
set +e
while :; do sleep 86400 & wait $!; done
`;
