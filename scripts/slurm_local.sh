#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for `ant sweep` with `executor: slurm` and the slurm tests.
#
#   bash scripts/slurm_local.sh install   # Debian packages (apt-get update only when something is missing)
#   bash scripts/slurm_local.sh start     # install if needed, write configs, start daemons, wait for the node idle
#   bash scripts/slurm_local.sh stop      # stop every daemon this script started (waits until they are gone)
#   bash scripts/slurm_local.sh status    # daemons + sinfo; exit 1 when the cluster is not up
#
# Recipe and quirks: docs/environment.md §4 (shared docs). No systemd here, so the daemons are started by hand.
# Accounting (mariadb + slurmdbd) is on by default so `sacct` reports real job states (COMPLETED/FAILED/TIMEOUT);
# SLURM_LOCAL_ACCOUNTING=0 skips it. `install` and `start` do not fail the caller (`make test` runs them on
# machines that may not be able to install: no root, no apt): they print why and exit 0, and the slurm tests
# then skip because `sinfo` is missing or the node is not idle; with ANT_REQUIRE_SLURM=1 (CI) they exit 1.
set -uo pipefail

ACCOUNTING="${SLURM_LOCAL_ACCOUNTING:-1}"
CLUSTER=localcluster
CONF_DIR=/etc/slurm
PIDS=(/run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid /run/mysqld/mysqld.pid /run/munge/munged.pid)
LOG_DIR=/var/log/slurm

say() { echo "[slurm_local] $*"; }
# ANT_REQUIRE_SLURM=1 (set by .ci/run): a cluster that cannot be installed or started fails the caller, so CI
# cannot pass with the SLURM tests skipped.
skip() {
  if [[ "${ANT_REQUIRE_SLURM:-0}" == 1 ]]; then say "FAILED (ANT_REQUIRE_SLURM=1): $*"; exit 1; fi
  say "SKIP: $*"; say "the SLURM tests will be skipped (sinfo unavailable or node not idle)"; exit 0
}

need_cmds() {
  local cmds=(munged slurmctld slurmd sinfo sbatch scontrol)
  [[ "$ACCOUNTING" == 1 ]] && cmds+=(slurmdbd mariadbd sacctmgr)
  for c in "${cmds[@]}"; do
    command -v "$c" >/dev/null 2>&1 || [[ -x "/usr/sbin/$c" ]] || return 1
  done
}

do_install() {
  if need_cmds; then say "packages already installed"; return 0; fi
  [[ "$(id -u)" == 0 ]] || skip "not root: cannot apt-get install slurm (run this script as root)"
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get: install munge + slurm-wlm (slurmctld, slurmd) by hand"
  local pkgs=(munge slurmctld slurmd slurm-client)
  [[ "$ACCOUNTING" == 1 ]] && pkgs+=(slurmdbd mariadb-server)
  say "installing ${pkgs[*]} (apt-get update first) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed (no network to Debian?)"
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || skip "apt-get install ${pkgs[*]} failed"
  need_cmds || skip "packages installed but some daemons are still missing"
  say "installed"
}

# slurm.conf sized from what slurmd itself detects on this machine (CPUs, sockets, cores, memory).
write_configs() {
  mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR" /run/munge
  local hw cpus boards sockets cores threads mem
  hw="$(slurmd -C 2>/dev/null | head -1)"
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw"); cpus=${cpus:-$(nproc)}
  boards=$(sed -n 's/.*Boards=\([0-9]*\).*/\1/p' <<<"$hw"); boards=${boards:-1}
  sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw"); sockets=${sockets:-1}
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw"); cores=${cores:-$cpus}
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw"); threads=${threads:-1}
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw"); mem=${mem:-4000}
  mem=$((mem * 85 / 100))  # leave room for the OS and the daemons, or slurmd marks the node invalid
  local acct
  if [[ "$ACCOUNTING" == 1 ]]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
  else
    acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  fi
  # KillWait=5: a job past its time limit gets SIGKILL 5 s after SIGTERM (default 30 s) so timeout tests are
  # quick. bf_interval=5: the backfill scheduler looks for startable jobs every 5 s (default 30). MinJobAge=600 keeps finished jobs visible to squeue/scontrol for 10 minutes.
  cat >"$CONF_DIR/slurm.conf.new" <<EOF
# written by scripts/slurm_local.sh: a single-node cluster on this machine
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
$acct
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=5
MinJobAge=600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
  if [[ "$ACCOUNTING" == 1 ]]; then
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF_DIR/slurmdbd.conf"
  fi
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local t=0
  until "$@" >/dev/null 2>&1; do
    sleep 0.5; t=$((t + 1))
    if ((t > secs * 2)); then say "timed out after ${secs}s waiting for $what"; return 1; fi
  done
  return 0
}

node_idle() { sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

do_start() {
  [[ "$(id -u)" == 0 ]] || skip "not root: cannot start slurmctld/slurmd"
  do_install
  if alive /run/slurmctld.pid && alive /run/slurmd.pid && node_idle; then
    say "already running: $(sinfo -h -o '%P %D %T %c CPUs' | head -1)"; return 0
  fi
  write_configs
  # The daemons must not inherit the caller's descriptors: under `flock LOCK bash slurm_local.sh start` munged,
  # mariadbd and slurmdbd kept the lock's descriptor open, and so held the lock for as long as they ran.
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    ((fd > 2 && fd < 255)) && eval "exec ${fd}>&-" 2>/dev/null
  done
  local SU=(runuser -u munge --)
  command -v runuser >/dev/null 2>&1 || SU=()
  chown munge:munge /run/munge 2>/dev/null || true
  if ! alive /run/munge/munged.pid; then
    [[ -f /etc/munge/munge.key ]] || { mungekey -c 2>/dev/null || create-munge-key 2>/dev/null || true; }
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    "${SU[@]}" /usr/sbin/munged || skip "munged failed to start"
  fi
  wait_for 10 munge bash -c 'munge -n | unmunge' || skip "munge does not work"
  if [[ "$ACCOUNTING" == 1 ]]; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    if ! alive /run/mysqld/mysqld.pid; then
      setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --socket=/run/mysqld/mysqld.sock \
        --pid-file=/run/mysqld/mysqld.pid >"$LOG_DIR/mariadb.log" 2>&1 </dev/null &
    fi
    wait_for 30 mariadb mariadb -e 'select 1' || skip "mariadb did not come up (see $LOG_DIR/mariadb.log)"
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    alive /run/slurmdbd.pid || slurmdbd || skip "slurmdbd failed to start"
    wait_for 30 slurmdbd sacctmgr -n list cluster || skip "slurmdbd does not answer (see $LOG_DIR/slurmdbd.log)"
    # -P: without it sacctmgr truncates the name to 'localclus+' and the grep misses it on the second start
    sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  alive /run/slurmctld.pid || slurmctld || skip "slurmctld failed to start (see $LOG_DIR/slurmctld.log)"
  # -N: the node is called localhost, which differs from the machine's hostname
  alive /run/slurmd.pid || slurmd -N localhost || skip "slurmd failed to start (see $LOG_DIR/slurmd.log)"
  wait_for 60 "the node to be idle" node_idle || skip "node not idle: $(sinfo -h -o '%T %E' 2>&1 | head -1)"
  say "up: $(sinfo -h -o 'partition %P, %D node, %T, %c CPUs' | head -1), accounting=$ACCOUNTING"
}

do_stop() {
  local stopped=0
  for f in "${PIDS[@]}"; do
    if alive "$f"; then
      local pid; pid=$(cat "$f")
      kill "$pid" 2>/dev/null
      # slurmctld takes a few seconds to exit; a new one must not start before (environment.md §4)
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
      stopped=$((stopped + 1))
    fi
  done
  say "stopped $stopped daemon(s)"
}

do_status() {
  for f in "${PIDS[@]}"; do
    if alive "$f"; then echo "  $(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "  $(basename "$f" .pid): stopped"; fi
  done
  if command -v sinfo >/dev/null 2>&1 && node_idle; then sinfo; return 0; fi
  say "cluster is not up"; return 1
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
