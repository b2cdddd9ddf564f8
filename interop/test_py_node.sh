#!/usr/bin/env bash
# Self-test of interop/py_node.py: real py2p 0.5.607 nodes on 127.0.0.1, driven through
# their stdin/stdout line protocol. Never hangs: every node runs under `timeout`, and every
# wait polls the node's output file for a bounded time.
#
#   interop/test_py_node.sh            (PYTHON=/path/to/python to pick the interpreter;
#                                       default: .venv/bin/python, else /tmp/venv/bin/python)
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
NODE="$HERE/py_node.py"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$HERE/../.venv/bin/python" ]; then PYTHON="$HERE/../.venv/bin/python"
    else PYTHON=/tmp/venv/bin/python; fi
fi
WAIT=${WAIT:-15}   # seconds for any single expected event

T="$(mktemp -d)"
PIDS=()
FDS=()
FAILS=0
PASSES=0

cleanup() {
    for fd in "${FDS[@]}"; do eval "exec $fd>&-" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.2
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

pass() { PASSES=$((PASSES + 1)); echo "ok   - $1"; }
fail() {
    FAILS=$((FAILS + 1)); echo "FAIL - $1"
    for f in "$T"/*.out "$T"/*.err; do [ -s "$f" ] && { echo "  --- $f"; sed 's/^/  | /' "$f" | tail -20; }; done
}

# start NAME ARGS... : runs py_node.py with stdin from a fifo held open on fd, output to $T/NAME.out
NEXTFD=10
start() {
    local name=$1; shift
    mkfifo "$T/$name.in"
    timeout 60 "$PYTHON" "$NODE" "$@" <"$T/$name.in" >"$T/$name.out" 2>"$T/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    eval "${name}_PID=$pid"
    local fd=$NEXTFD; NEXTFD=$((NEXTFD + 1))
    eval "exec $fd>\"$T/$name.in\""
    FDS+=("$fd")
    eval "${name}_FD=$fd"
}
# say NAME LINE : write one line to the node's stdin
say() { local fd; eval "fd=\$${1}_FD"; printf '%s\n' "$2" >&"$fd"; }
# eof NAME : close the node's stdin
eof() { local fd; eval "fd=\$${1}_FD"; eval "exec $fd>&-"; }

# wait_for NAME PYEXPR : wait until some output line (as dict `e`) satisfies PYEXPR
wait_for() {
    local name=$1 expr=$2 deadline=$((SECONDS + WAIT))
    while [ $SECONDS -lt $deadline ]; do
        if "$PYTHON" - "$T/$name.out" "$expr" <<'EOF'
import json, sys
hit = False
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    try:
        if eval(sys.argv[2], {}, {'e': e}):
            hit = True
            break
    except Exception:
        pass
sys.exit(0 if hit else 1)
EOF
        then return 0; fi
        sleep 0.1
    done
    return 1
}
# field NAME EVENT KEY : value of KEY in the first EVENT line of the node's output
field() {
    "$PYTHON" - "$T/$1.out" "$2" "$3" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get('event') == sys.argv[2]:
        print(e[sys.argv[3]])
        break
EOF
}
# check NAME DESCRIPTION PYEXPR
check() { if wait_for "$1" "$3"; then pass "$2"; else fail "$2"; fi; }
# exits NAME DESCRIPTION : the node exits with status 0 within WAIT seconds
exits() {
    local pid; eval "pid=\$${1}_PID"
    local deadline=$((SECONDS + WAIT))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then fail "$2 (still running)"; return; fi
    wait "$pid"; local rc=$?
    if [ $rc -eq 0 ]; then pass "$2"; else fail "$2 (exit status $rc)"; fi
}

echo "# python: $PYTHON"

# ---------------------------------------------------------------- mesh: A <- B
start A mesh --bind 127.0.0.1:0
check A "A prints ready first" "e['event'] == 'ready'"
head -1 "$T/A.out" | grep -q '"event": "ready"' && pass "ready is line 1" || fail "ready is line 1"
A_ID=$(field A ready id); A_ADDR=$(field A ready addr)
start B mesh --bind 127.0.0.1:0 --connect "$A_ADDR" --compression zlib --compression gzip
check B "B ready" "e['event'] == 'ready'"
B_ID=$(field B ready id); B_ADDR=$(field B ready addr)
check A "A sees B connected" "e['event'] == 'connected' and e['peer'] == '$B_ID' and e['addr'] == ['127.0.0.1', ${B_ADDR##*:}]"
check B "B sees A connected" "e['event'] == 'connected' and e['peer'] == '$A_ID' and e['addr'] == ['127.0.0.1', ${A_ADDR##*:}]"

say A "hello from A"
say B "hello from B ünïcode"
check B "B gets A's broadcast" "e['event'] == 'message' and e['kind'] == 'broadcast' and e['sender'] == '$A_ID' and e['packets'] == ['hello from A'] and isinstance(e['time'], int) and len(e['id']) > 40"
check A "A gets B's broadcast" "e['event'] == 'message' and e['kind'] == 'broadcast' and e['sender'] == '$B_ID' and e['packets'] == ['hello from B ünïcode']"

say A "/whisper $B_ID psst B"
say B "/whisper $A_ID psst A"
check B "B gets A's whisper" "e['event'] == 'message' and e['kind'] == 'whisper' and e['sender'] == '$A_ID' and e['packets'] == ['psst B']"
check A "A gets B's whisper" "e['event'] == 'message' and e['kind'] == 'whisper' and e['sender'] == '$B_ID' and e['packets'] == ['psst A']"

say A "/peers"
check A "/peers lists B" "e['event'] == 'peers' and e['peers'] == [{'id': '$B_ID', 'addr': ['127.0.0.1', ${B_ADDR##*:}]}]"
say A "/whisper nosuchpeer hi"
say A "/whisper $A_ID me"
check A "whisper to self is an error" "e['event'] == 'error' and 'self' in e['message']"

# ---------------------------------------------------------------- C - B (line A-B-C), whisper C -> A via request/response
PY_NODE_MAX_OUTGOING=0 start C mesh --bind 127.0.0.1:0 --connect "$B_ADDR"
check C "C ready" "e['event'] == 'ready'"
C_ID=$(field C ready id)
check C "C sees B connected" "e['event'] == 'connected' and e['peer'] == '$B_ID'"
if grep -q "\"peer\": \"$A_ID\"" "$T/C.out"; then fail "C not dialled to A (max_outgoing 0)"; else pass "C not dialled to A (max_outgoing 0)"; fi
say C "/whisper $A_ID via request"
check A "A gets C's whisper through request/response" "e['event'] == 'message' and e['kind'] == 'whisper' and e['sender'] == '$C_ID' and e['packets'] == ['via request']"
check C "C now connected to A" "e['event'] == 'connected' and e['peer'] == '$A_ID'"
sleep 0.3
say C "/peers"
check C "C's /peers has A and B once each" "e['event'] == 'peers' and sorted(p['id'] for p in e['peers']) == sorted(['$A_ID', '$B_ID'])"

if grep -q "\"disconnected\"" "$T/A.out" "$T/C.out"; then fail "request/response connection stays up"; else pass "request/response connection stays up"; fi
if grep -q "Traceback" "$T"/*.err; then fail "no py2p exceptions"; else pass "no py2p exceptions"; fi

# ---------------------------------------------------------------- quit
eof B; sleep 0.3
check B "B still running after EOF" "True"
kill -0 "$B_PID" 2>/dev/null && pass "B alive after stdin EOF" || fail "B alive after stdin EOF"
say A "/quit"
exits A "A exits 0 on /quit"
check B "B sees A disconnected" "e['event'] == 'disconnected' and e['peer'] == '$A_ID'"
check C "C sees A disconnected" "e['event'] == 'disconnected' and e['peer'] == '$A_ID'"
kill -TERM "$B_PID"
exits B "B exits 0 on SIGTERM (after stdin EOF)"
say C "/quit"
exits C "C exits 0 on /quit"

# ---------------------------------------------------------------- sync: S <- R
start S sync --bind 127.0.0.1:0
check S "S ready" "e['event'] == 'ready'"
S_ID=$(field S ready id); S_ADDR=$(field S ready addr)
say S "/set early before-connect"
check S "S stores locally" "e['event'] == 'stored' and e['key'] == 'early' and e['value'] == 'before-connect' and e['owner'] == '$S_ID'"
start R sync --bind 127.0.0.1:0 --connect "$S_ADDR"
check R "R ready" "e['event'] == 'ready'"
R_ID=$(field R ready id)
[ "$(field R ready protocol)" = "$(field S ready protocol)" ] && pass "same sync protocol id" || fail "same sync protocol id"
check R "R connected to S" "e['event'] == 'connected' and e['peer'] == '$S_ID'"
check R "R gets S's key from the handshake" "e['event'] == 'stored' and e['key'] == 'early' and e['value'] == 'before-connect' and e['owner'] == '$S_ID'"
say S "/set color deep blue sea"
check R "/set on S shows stored on R" "e['event'] == 'stored' and e['key'] == 'color' and e['value'] == 'deep blue sea' and e['owner'] == '$S_ID'"
say R "/get color"
check R "/get on R" "e['event'] == 'value' and e['key'] == 'color' and e['value'] == 'deep blue sea'"
say R "/get missing"
check R "/get of a missing key is null" "e['event'] == 'value' and e['key'] == 'missing' and e['value'] is None"
# py2p's lease tie-break: with equal (whole-second) timestamps the owner whose id sorts first
# wins, so R could take S's key within the same second. Wait for the next second.
sleep 1.1
say R "/set color red"
check R "/set over S's lease is refused" "e['event'] == 'error' and 'permission' in e['message']"
say R "/set mine 1"
check S "R's key reaches S" "e['event'] == 'stored' and e['key'] == 'mine' and e['value'] == '1' and e['owner'] == '$R_ID'"
say R "/del mine"
check S "R's /del reaches S" "e['event'] == 'deleted' and e['key'] == 'mine'"
say R "/del never-set"
check R "/del of a missing key is an error" "e['event'] == 'error' and 'never-set' in e['message']"
say S "/quit"; say R "/quit"
exits S "S exits 0 on /quit"
exits R "R exits 0 on /quit"

# ---------------------------------------------------------------- sync0 vs sync1 do not mix
start N sync --bind 127.0.0.1:0 --no-leasing
check N "N ready" "e['event'] == 'ready'"
[ "$(field N ready protocol)" != "$(field S ready protocol)" ] && pass "--no-leasing changes the protocol id" || fail "--no-leasing changes the protocol id"
say N "/quit"
exits N "N exits 0"

# ---------------------------------------------------------------- --compression
# py2p (debug level >= 4, printed to stderr) logs "Compressing with <flag>" for each frame it
# compresses. Each side sends with the first method of ITS OWN list that the peer advertised.
PY_NODE_DEBUG=4 start D mesh --bind 127.0.0.1:0 --compression gzip --compression zlib
check D "D ready" "e['event'] == 'ready'"
PY_NODE_DEBUG=4 start E mesh --bind 127.0.0.1:0 --connect "$(field D ready addr)"
check E "E connected" "e['event'] == 'connected'"
check D "D connected" "e['event'] == 'connected'"
say D "zipped from D"; say E "zipped from E"
check E "E decodes D's gzip frame" "e['event'] == 'message' and e['packets'] == ['zipped from D']"
check D "D decodes E's zlib frame" "e['event'] == 'message' and e['packets'] == ['zipped from E']"
grep -aqF "Compressing with b'\\x11'" "$T/D.err" && ! grep -aqF "Compressing with b'\\x13'" "$T/D.err" \
    && pass "D (gzip,zlib) sends gzip" || fail "D (gzip,zlib) sends gzip"
grep -aqF "Compressing with b'\\x13'" "$T/E.err" && pass "E (default list) sends zlib to D" || fail "E (default list) sends zlib to D"
say D "/quit"; say E "/quit"
exits D "D exits 0"; exits E "E exits 0"

PY_NODE_DEBUG=4 start F mesh --bind 127.0.0.1:0 --compression none
check F "F ready" "e['event'] == 'ready'"
PY_NODE_DEBUG=4 start G mesh --bind 127.0.0.1:0 --connect "$(field F ready addr)"
check G "G connected" "e['event'] == 'connected'"
check F "F connected" "e['event'] == 'connected'"
say F "plain from F"; say G "plain from G"
check G "G gets F's plain frame" "e['event'] == 'message' and e['packets'] == ['plain from F']"
check F "F gets G's plain frame" "e['event'] == 'message' and e['packets'] == ['plain from G']"
grep -aq "Compressing with" "$T/F.err" "$T/G.err" && fail "--compression none: nothing compressed" || pass "--compression none: nothing compressed"
grep -aq "Compression methods changed to \[\]" "$T/G.err" && pass "F advertised []" || fail "F advertised []"
say F "/quit"; say G "/quit"
exits F "F exits 0"; exits G "G exits 0"

echo "# $PASSES passed, $FAILS failed"
[ $FAILS -eq 0 ]
