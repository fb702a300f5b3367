#!/usr/bin/env bash
# bench-ab: webhookd built at BASE (default main) against webhookd built from
# the current tree (uncommitted changes included), on the fast scenario's
# drain, run back to back alternately: A B A B ... (ROUNDS pairs, at least 2).
# Alternating spreads the machine's drift (other work, page cache, broker
# state) over both builds instead of charging it to one.
#
#   BASE=main ROUNDS=2 SCALE=1 scripts/bench-ab.sh
#
# PASS when the current build's mean deliveries/s >= base's x 0.97 and its
# mean CPU-s per 10k deliveries <= base's x 1.05. Exit status 1 on FAIL.
set -euo pipefail

BASE=${BASE:-main}
ROUNDS=${ROUNDS:-2}
SCALE=${SCALE:-1}
if [ "$ROUNDS" -lt 2 ]; then
	echo "bench-ab: ROUNDS must be at least 2" >&2
	exit 2
fi
command -v jq >/dev/null || { echo "bench-ab: needs jq" >&2; exit 2; }

root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/webhookd-bench-ab.XXXXXX")
cleanup() {
	git -C "$root" worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

base_rev=$(git -C "$root" rev-parse --short "$BASE")
cur_rev=$(git -C "$root" rev-parse --short HEAD)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
	cur_rev="$cur_rev+uncommitted"
fi
echo "bench-ab: A = $BASE ($base_rev), B = current tree ($cur_rev); $ROUNDS rounds, -scale $SCALE"
git -C "$root" worktree add --detach "$tmp/base" "$BASE" >/dev/null 2>&1
(cd "$tmp/base" && go build -o "$tmp/webhookd-A" ./cmd/webhookd)
(cd "$root" && go build -o "$tmp/webhookd-B" ./cmd/webhookd && go build -o "$tmp/bench" ./bench)

# run SIDE ROUND: one fast drain; prints "deliveries/s cpu-per-10k".
run() {
	local dir="$tmp/$1-$2"
	mkdir -p "$dir"
	(cd "$root" && "$tmp/bench" -scenarios fast -drain-only -scale "$SCALE" \
		-webhookd "$tmp/webhookd-$1" -results "$dir" >"$dir/out.txt" 2>"$dir/err.txt") || {
		echo "bench-ab: run $1 $2 failed; its output:" >&2
		tail -20 "$dir/err.txt" >&2
		exit 2
	}
	local js="$dir/latest.json"
	if [ "$(jq -r '.scenarios[0].metrics[] | select(.metric=="deliveries counted") | .pass' "$js")" != "true" ]; then
		echo "bench-ab: run $1 $2 did not deliver every event exactly once:" >&2
		jq -r '.scenarios[0].metrics[] | select(.metric=="deliveries counted") | .shown' "$js" >&2
		exit 2
	fi
	jq -r '[(.scenarios[0].metrics[] | select(.metric=="deliveries/s") | .value),
	        (.scenarios[0].metrics[] | select(.metric=="webhookd CPU per 10k deliveries") | .value)] | @tsv' "$js"
}

: >"$tmp/A.tsv"
: >"$tmp/B.tsv"
for i in $(seq 1 "$ROUNDS"); do
	for side in A B; do
		line=$(run "$side" "$i")
		echo "$line" >>"$tmp/$side.tsv"
		printf '  round %d %s: %8.0f deliveries/s  %.3f CPU-s/10k\n' "$i" "$side" $line
	done
done

# stats FILE COLUMN: mean min max
stats() { awk -v c="$2" '{ s += $c; if (NR == 1 || $c < lo) lo = $c; if (NR == 1 || $c > hi) hi = $c } END { printf "%f %f %f", s / NR, lo, hi }' "$1"; }
read -r a_rate a_rate_lo a_rate_hi <<<"$(stats "$tmp/A.tsv" 1)"
read -r b_rate b_rate_lo b_rate_hi <<<"$(stats "$tmp/B.tsv" 1)"
read -r a_cpu a_cpu_lo a_cpu_hi <<<"$(stats "$tmp/A.tsv" 2)"
read -r b_cpu b_cpu_lo b_cpu_hi <<<"$(stats "$tmp/B.tsv" 2)"

echo
printf '| build | deliveries/s (mean, min-max) | CPU-s per 10k (mean, min-max) |\n|---|---|---|\n'
printf '| A %s (%s) | %.0f (%.0f-%.0f) | %.3f (%.3f-%.3f) |\n' "$BASE" "$base_rev" "$a_rate" "$a_rate_lo" "$a_rate_hi" "$a_cpu" "$a_cpu_lo" "$a_cpu_hi"
printf '| B current (%s) | %.0f (%.0f-%.0f) | %.3f (%.3f-%.3f) |\n' "$cur_rev" "$b_rate" "$b_rate_lo" "$b_rate_hi" "$b_cpu" "$b_cpu_lo" "$b_cpu_hi"

verdict=$(awk -v ar="$a_rate" -v br="$b_rate" -v ac="$a_cpu" -v bc="$b_cpu" \
	-v arl="$a_rate_lo" -v arh="$a_rate_hi" -v acl="$a_cpu_lo" -v ach="$a_cpu_hi" 'BEGIN {
	rate = br / ar; cpu = bc / ac
	printf "B/A deliveries/s %.3f (need >= 0.970), B/A CPU-s per 10k %.3f (need <= 1.050)\n", rate, cpu
	# Noise: how far A moved between its own runs, against the margins.
	printf "noise: A alone spread %.1f%% in deliveries/s and %.1f%% in CPU-s per 10k across its runs", 100 * (arh - arl) / ar, 100 * (ach - acl) / ac
	if ((arh - arl) / ar > 0.03 || (ach - acl) / ac > 0.05)
		printf " - more than the margins (3%%, 5%%): the verdict is within noise; run more ROUNDS on a quiet machine\n"
	else
		printf " - within the margins (3%%, 5%%)\n"
	if (rate >= 0.97 && cpu <= 1.05) print "PASS"; else print "FAIL"
}')
echo
echo "$verdict"
echo "deliveries/s swings with whatever else runs on the machine (receivers, broker and webhookd share the cores); CPU-s per 10k deliveries is the steadier figure to compare builds by."
[ "$(echo "$verdict" | tail -1)" = PASS ]
