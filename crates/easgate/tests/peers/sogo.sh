#!/usr/bin/env bash
# A private SOGo ActiveSync stack for the integration tests (see SOGO.md next to this file).
#
#   sogo.sh start DIR [--trust-proxy]   start dovecot + memcached + a fresh PostgreSQL database +
#                                       sogod, all on ephemeral 127.0.0.1 ports; print one line of
#                                       JSON on stdout once SOGo answers EAS, exit 0 (daemons keep
#                                       running). On failure: log tail on stderr, exit 1.
#   sogo.sh stop DIR                    kill what `start DIR` started, drop its database.
#
# Needs root and the Debian packages sogo sogo-activesync dovecot-imapd memcached
# (scripts/install-peers). PostgreSQL: SOGO_PGHOST (127.0.0.1), SOGO_PGPORT (5432),
# SOGO_PGUSER (postgres), SOGO_PGPASSWORD (empty; trust auth). Tuning: SOGO_WORKERS (3),
# SOGO_MAX_PING (60: largest Ping HeartbeatInterval honoured), SOGO_INTERNAL_SYNC (5: how often
# a Ping looks for changes; 5 s is SOGo's floor), SOGO_EAS_DEBUG=1 (log every EAS body),
# SOGO_START_TIMEOUT (60 s).
set -euo pipefail

die() { echo "sogo.sh: $*" >&2; exit 1; }

usage() { die "usage: sogo.sh start DIR [--trust-proxy] | sogo.sh stop DIR"; }

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
trust_proxy=NO
for arg in "$@"; do
    case $arg in
        --trust-proxy) trust_proxy=YES ;;
        *) usage ;;
    esac
done
[ "$(id -u)" = 0 ] || die "must run as root (sogod runs as user sogo, dovecot needs root)"

pg_host=${SOGO_PGHOST:-127.0.0.1}
pg_port=${SOGO_PGPORT:-5432}
pg_user=${SOGO_PGUSER:-postgres}
pg_password=${SOGO_PGPASSWORD:-}
export PGPASSWORD=$pg_password
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" "$@"; }

# The start time (in clock ticks since boot) of a process: with its pid, an identity that
# survives exec and cannot be reused.
proc_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# Live (not zombie) members of process group $1 plus their descendants: sogod's workers call
# setsid, so they leave the watchdog's group.
group_and_children() {
    local pids p
    pids=$(ps -e -o pid=,pgid=,stat= | awk -v g="$1" '$2 == g && $3 !~ /^Z/ {print $1}')
    for p in $pids; do
        echo "$p"
        ps -e -o pid=,ppid=,stat= | awk -v pp="$p" '$2 == pp && $3 !~ /^Z/ {print $1}'
    done | sort -u
}

# Kill what $dir/state records (each daemon is a session leader, started by setsid, with its
# group and children), checking first that each pid is still the process we started; drop the
# database.
stop_stack() {
    local state=$dir/state procs="" db="" dovecot_dir="" p pid start victims=""
    [ -f "$state" ] || return 0
    # shellcheck disable=SC1090
    . "$state"
    for p in $procs; do
        pid=${p%%:*}
        start=${p#*:}
        if [ "$(proc_start "$pid")" = "$start" ]; then
            victims="$victims $(group_and_children "$pid")"
        fi
    done
    local i left
    # shellcheck disable=SC2086
    [ -z "${victims// /}" ] || kill -TERM $victims 2>/dev/null || true
    for i in $(seq 30); do # sogod ignores SIGTERM while its workers idle: 1 s, then SIGKILL
        left=""
        for pid in $victims; do
            if sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | grep -q '^[^Z]'; then left="$left $pid"; fi
        done
        [ -n "$left" ] || break
        # shellcheck disable=SC2086
        [ "$i" != 10 ] || kill -KILL $left 2>/dev/null || true
        sleep 0.1
    done
    if [ -n "$db" ]; then
        psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "sogo.sh: could not drop database $db" >&2
    fi
    case $dovecot_dir in
        /tmp/easgate-sogo-dovecot.*) rm -rf "$dovecot_dir" ;;
    esac
    rm -f "$state"
}

if [ "$cmd" = stop ]; then
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    stop_stack
    exit 0
fi
[ "$cmd" = start ] || usage

for bin in /usr/sbin/sogod /usr/sbin/dovecot /usr/bin/memcached psql python3 setpriv; do
    command -v "$bin" >/dev/null || die "$bin not found (run scripts/install-peers)"
done
[ -d /usr/lib/GNUstep/SOGo/ActiveSync.SOGo ] || die "sogo-activesync is not installed (run scripts/install-peers)"

t0=$(date +%s.%N)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
stop_stack # a stale stack from an earlier run in the same DIR
rm -f "$dir"/sogo.log "$dir"/dovecot.log "$dir"/memcached.log

# The tag names the database and the dovecot instance and marks sogod's command line.
tag=sogo_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
db=$tag
read -r sogo_port imap_port mc_port < <(python3 - <<'PY'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*[s.getsockname()[1] for s in socks])
PY
)

# Dovecot's mail processes run as `mail`: their files must be reachable by that user. A test's
# temporary DIR is often mode 0700 somewhere, so fall back to a private directory in /tmp.
if setpriv --reuid=mail --regid=mail --clear-groups test -x "$dir" 2>/dev/null && [ "$(stat -c %a "$dir")" != 700 ]; then
    dovecot_dir=$dir/dovecot
    rm -rf "$dovecot_dir"
    mkdir -p "$dovecot_dir"
else
    dovecot_dir=$(mktemp -d /tmp/easgate-sogo-dovecot.XXXXXX)
    chmod 755 "$dovecot_dir"
fi
cat >"$dir/state" <<EOF
tag=$tag
db=$db
dovecot_dir=$dovecot_dir
procs=""
EOF
record_pid() {
    sed -i "s/^procs=\"\(.*\)\"/procs=\"\1 $1:$(proc_start "$1")\"/" "$dir/state"
    pids+=("$1")
}
pids=()

fail() {
    echo "sogo.sh: $*" >&2
    for log in sogo.log dovecot.log memcached.log; do
        if [ -s "$dir/$log" ]; then
            echo "---- tail of $dir/$log" >&2
            tail -n 40 "$dir/$log" >&2
        fi
    done
    stop_stack
    exit 1
}

users=(alice@example.com:alice-pw:Alice bob@example.com:bob-pw:Bob)

# --- PostgreSQL: a fresh database with the user source and the tables SOGo would otherwise
# create at startup (its workers race to create them and log errors).
psql_admin -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null || fail "cannot create database $db"
{
    cat <<'SQL'
CREATE TABLE sogo_users (c_uid varchar(255) PRIMARY KEY, c_name varchar(255),
    c_password varchar(255), c_cn varchar(255), mail varchar(255));
CREATE TABLE sogo_folder_info (c_folder_id SERIAL, c_path varchar(255) PRIMARY KEY,
    c_path1 varchar(255) NOT NULL, c_path2 varchar(255), c_path3 varchar(255),
    c_path4 varchar(255), c_foldername varchar(255) NOT NULL, c_location varchar(2048),
    c_quick_location varchar(2048), c_acl_location varchar(2048),
    c_folder_type varchar(255) NOT NULL);
CREATE TABLE sogo_user_profile (c_uid varchar(255) PRIMARY KEY, c_defaults text,
    c_settings text);
CREATE TABLE sogo_sessions_folder (c_id varchar(255) PRIMARY KEY,
    c_value varchar(4096) NOT NULL, c_creationdate integer NOT NULL,
    c_lastseen integer NOT NULL);
SQL
    for u in "${users[@]}"; do
        IFS=: read -r login password cn <<<"$u"
        echo "INSERT INTO sogo_users VALUES ('$login', '$login', md5('$password'), '$cn', '$login');"
    done
} | psql_admin -d "$db" >/dev/null || fail "cannot create the tables in $db"

# --- dovecot: IMAP on 127.0.0.1:$imap_port, a passwd-file, Maildir under $dovecot_dir/mail.
mkdir -p "$dovecot_dir/run" "$dovecot_dir/mail"
chown mail:mail "$dovecot_dir/mail"
: >"$dovecot_dir/passwd"
for u in "${users[@]}"; do
    IFS=: read -r login password cn <<<"$u"
    echo "$login:{PLAIN}$password:$(id -u mail):$(id -g mail)::$dovecot_dir/mail/$login::" >>"$dovecot_dir/passwd"
done
chgrp dovecot "$dovecot_dir/passwd"
chmod 640 "$dovecot_dir/passwd"
trust_passdb=""
if [ "$trust_proxy" = YES ]; then
    # With SOGoTrustProxyAuthentication, SOGo logs into IMAP as the proxied user with the password
    # it finds in the request: `Authorization: Basic user:PW` if the proxy also sends
    # `x-webobjects-auth-type: Basic`, else an empty one. So dovecot accepts, from 127.0.0.1 only
    # and for known users only (the userdb is the passwd-file): the shared master password
    # $tag (mailcow's scheme), or no password at all.
    trust_passdb="passdb {
  driver = static
  args = password=$tag allow_nets=127.0.0.1/32
}
passdb {
  driver = static
  args = nopassword allow_nets=127.0.0.1/32
}"
fi
cat >"$dir/dovecot.conf" <<EOF
# $tag
protocols = imap
listen = 127.0.0.1
base_dir = $dovecot_dir/run
state_dir = $dovecot_dir/run
instance_name = $tag
log_path = $dir/dovecot.log
ssl = no
auth_verbose = yes
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$dovecot_dir/mail/%u
first_valid_uid = 1
mail_plugins = \$mail_plugins
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dovecot_dir/passwd
}
$trust_passdb
userdb {
  driver = passwd-file
  args = username_format=%u $dovecot_dir/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
EOF
setsid /usr/sbin/dovecot -F -c "$dir/dovecot.conf" >>"$dir/dovecot.log" 2>&1 </dev/null &
record_pid $!

# --- memcached
setsid /usr/bin/memcached -l 127.0.0.1 -p "$mc_port" -U 0 -u memcache -m 32 -c 256 \
    >>"$dir/memcached.log" 2>&1 </dev/null &
record_pid $!

# --- sogod, as user sogo; every setting is an argument (they beat /etc/sogo/sogo.conf).
url="postgresql://$pg_user:${pg_password:-x}@$pg_host:$pg_port/$db"
sogo_args=(
    -WOPort "127.0.0.1:$sogo_port"
    -WOWorkersCount "${SOGO_WORKERS:-3}"
    -WONoDetach YES
    -WOLogFile -
    -WOPidFile /dev/null
    -WOWatchDogRequestTimeout 10
    -SOGoInstanceTag "$tag"
    -SOGoProfileURL "$url/sogo_user_profile"
    -OCSFolderInfoURL "$url/sogo_folder_info"
    -OCSSessionsFolderURL "$url/sogo_sessions_folder"
    -OCSEMailAlarmsFolderURL "$url/sogo_alarms_folder"
    -SOGoUserSources "({type = sql; id = users; viewURL = \"$url/sogo_users\"; canAuthenticate = YES; isAddressBook = NO; userPasswordAlgorithm = md5;})"
    -SOGoIMAPServer "imap://127.0.0.1:$imap_port/?tls=NO"
    -SOGoSieveServer "sieve://127.0.0.1:1/?tls=NO"
    -SOGoSieveScriptsEnabled NO
    -SOGoVacationEnabled NO
    -SOGoForwardEnabled NO
    -SOGoMailingMechanism smtp
    -SOGoSMTPServer "smtp://127.0.0.1:1"
    -SOGoMailDomain example.com
    -SOGoMemcachedHost "127.0.0.1:$mc_port"
    -SOGoTimeZone UTC
    -SOGoLanguage English
    -SOGoEnableEMailAlarms NO
    -SOGoAppointmentSendEMailNotifications NO
    -SOGoIMAPAclConformsToIMAPExt YES
    -SOGoDraftsFolderName Drafts
    -SOGoSentFolderName Sent
    -SOGoTrashFolderName Trash
    -SOGoJunkFolderName Junk
    -SOGoMaximumPingInterval "${SOGO_MAX_PING:-60}"
    -SOGoMaximumSyncInterval 30
    -SOGoInternalSyncInterval "${SOGO_INTERNAL_SYNC:-5}"
    -SOGoEASDebugEnabled "$([ "${SOGO_EAS_DEBUG:-0}" = 1 ] && echo YES || echo NO)"
    -SOGoTrustProxyAuthentication "$trust_proxy"
)
: >"$dir/sogo.log"
HOME=/tmp setsid setpriv --reuid=sogo --regid=sogo --init-groups -- \
    /usr/sbin/sogod "${sogo_args[@]}" >>"$dir/sogo.log" 2>&1 </dev/null &
record_pid $!

# --- wait until SOGo answers an authenticated EAS OPTIONS
probe_headers=(-u alice@example.com:alice-pw)
if [ "$trust_proxy" = YES ]; then
    probe_headers=(-H "x-webobjects-remote-user: alice@example.com")
fi
deadline=$(( $(date +%s) + ${SOGO_START_TIMEOUT:-60} ))
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X OPTIONS "${probe_headers[@]}" \
        "http://127.0.0.1:$sogo_port/SOGo/Microsoft-Server-ActiveSync" 2>/dev/null || true)
    [ "$code" = 200 ] && break
    for pg in "${pids[@]}"; do
        kill -0 "$pg" 2>/dev/null || fail "a daemon (pid $pg) exited during startup"
    done
    [ "$(date +%s)" -lt "$deadline" ] || fail "SOGo did not answer EAS OPTIONS with 200 within ${SOGO_START_TIMEOUT:-60} s (last: $code)"
    sleep 0.2
done
t1=$(date +%s.%N)
echo "startup_seconds=$(python3 -c "print(round($t1-$t0,2))")" >>"$dir/state"

pids_json=$(IFS=,; echo "${pids[*]}")
printf '{"port":%d,"eas_url":"http://127.0.0.1:%d/SOGo/Microsoft-Server-ActiveSync","log":"%s/sogo.log","pids":[%s],"imap_port":%d,"memcached_port":%d,"database":"%s","trust_proxy":%s,"imap_master_password":%s,"users":[{"user":"alice@example.com","password":"alice-pw"},{"user":"bob@example.com","password":"bob-pw"}]}\n' \
    "$sogo_port" "$sogo_port" "$dir" "$pids_json" "$imap_port" "$mc_port" "$db" \
    "$([ "$trust_proxy" = YES ] && echo true || echo false)" \
    "$([ "$trust_proxy" = YES ] && echo "\"$tag\"" || echo null)"
