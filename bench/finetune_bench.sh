#!/usr/bin/env bash
# LoRA fine-tuning throughput and memory: `toy finetune` against Hugging Face
# PEFT + PyTorch (float32, CPU) doing the same step on the same model and batch
# shape: SmolLM2-135M-Instruct (Q4_1 GGUF; PEFT gets it dequantized to float32),
# B x T windows of tinyshakespeare, LoRA rank R on q,v, AdamW, grad clip 1.
#
#   bench/finetune_bench.sh [TOY_BUILD_DIR]     # default: ./build
#
# Environment (defaults in brackets):
#   BATCH [4] CTX [256] STEPS [5] RANK [8] TARGETS [q,v] THREADS [2]
#   COMPUTE [f32]          toy's --compute-type (f32 or bf16; PEFT runs float32)
#   PEFT_WARMUP [1]        untimed PEFT steps before the STEPS timed ones
#   PEFT_TORCH [debian pypi]  which PyTorch builds to run (bench/peft_venv.sh)
#   PEFT_BLAS_THREADS [1]  OPENBLAS_NUM_THREADS for the PEFT runs
#   VERIFY [1]             first check the converted HF model's logits against toy's
#   ROUNDS [1]             repeat the training runs; the table keeps each engine's best
#   DATA                   training text [../shared/fixtures/text/tinyshakespeare.txt]
#   TOY_MODEL_CACHE, TOY_CACHE   where the model and the Python environments live
#
# Each engine runs alone, one after the other, under /usr/bin/time -v (peak RSS is
# its "Maximum resident set size"). On a shared machine run the whole script
# when it is quiet, and compare only numbers from one run of it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
build="$(cd "${1:-$repo/build}" && pwd)"
toy="$build/toy"
[[ -x "$toy" ]] || { echo "finetune_bench.sh: no toy binary at $toy (build it, or pass the build dir)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "finetune_bench.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

B="${BATCH:-4}" T="${CTX:-256}" N="${STEPS:-5}" R="${RANK:-8}" TARGETS="${TARGETS:-q,v}"
THREADS="${THREADS:-2}" WARMUP="${PEFT_WARMUP:-1}" TORCHES="${PEFT_TORCH:-debian pypi}"
BLAS_THREADS="${PEFT_BLAS_THREADS:-1}" VERIFY="${VERIFY:-1}" ROUNDS="${ROUNDS:-1}"
data="${DATA:-$repo/../shared/fixtures/text/tinyshakespeare.txt}"
[[ -f "$data" ]] || { echo "finetune_bench.sh: no training text at $data (set DATA)" >&2; exit 1; }

model="$("$here/../scripts/fetch-smollm2.sh")"
work="$(mktemp -d /tmp/finetune_bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The Python environments first, so that their one-time installs are not inside
# any measurement.
declare -A python
for kind in $TORCHES; do
    python[$kind]="$("$here/peft_venv.sh" "$kind")"
done

# "Maximum resident set size (kbytes): N" of a /usr/bin/time -v log, in MiB.
rss_mib() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }
cpu_pct() { awk -F': ' '/Percent of CPU this job got/ { print $2 }' "$1"; }
# The larger of two decimal numbers (bash has integers only); an empty second wins never.
max() { awk -v a="$1" -v b="${2:-}" 'BEGIN { print (b == "" || a + 0 >= b + 0) ? a : b }'; }
load() { cut -d' ' -f1 /proc/loadavg; }
per_step() { awk -v t="$1" -v n=$((B * T)) 'BEGIN { printf "%.2f", n / t }'; }

# The revision of the sources the binary was built from (the build dir's CMake
# source dir, which need not be this checkout); "+dirty" when src/ had changes.
src="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null || true)"
rev="?"
if [[ -n "$src" ]] && rev="$(git -C "$src" rev-parse --short HEAD 2>/dev/null)"; then
    git -C "$src" diff --quiet HEAD -- src 2>/dev/null || rev="$rev+dirty"
fi

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "toy: $toy (sources ${src:-?} at $rev)"
echo "model: $model"
echo "config: batch $B x ctx $T, $N steps, LoRA r=$R on $TARGETS, AdamW lr 2e-4, $THREADS threads"
echo

peft_args=(-m "$model" --data "$data" --toy "$toy" --batch "$B" --ctx "$T" --rank "$R"
    --targets "$TARGETS" --threads "$THREADS" --blas-threads "$BLAS_THREADS")

if [[ "$VERIFY" == 1 ]]; then
    # The HF model must compute what the GGUF computes (RoPE rows un-permuted,
    # tied output): compare with toy's exact-arithmetic logits before timing it.
    for kind in $TORCHES; do
        echo "logits check ($kind torch):"
        "${python[$kind]}" "$here/peft_lora_bench.py" "${peft_args[@]}" --steps 0 --verify-logits \
            2>&1 >/dev/null | grep 'logits check' | sed 's/^/  /'
    done
    echo
fi

declare -A peft_tps peft_rss peft_train_rss peft_cpu peft_cpu_step peft_desc
toy_tps="" toy_tps2="" toy_cpu2="" toy_rss="" toy_cpu=""
for ((round = 1; round <= ROUNDS; ++round)); do
    # --- toy finetune. Its tokens_per_s covers all N steps (the first included)
    # and not the loss estimate that follows them (one batch: --eval-batches 1); --val-fraction 0
    # skips the held-out evaluation.
    echo "round $round: toy finetune (load average $(load)) ..." >&2
    : >"$work/toy_ft.err" # exists before tail opens it
    /usr/bin/time -v -o "$work/toy_ft.time" "$toy" finetune -m "$model" --data "$data" \
        -o "$work/adapter.gguf" --steps "$N" --batch "$B" -c "$T" -r "$R" --lora-targets "$TARGETS" \
        -t "$THREADS" --val-fraction 0 --eval-batches 1 --compute-type "${COMPUTE:-f32}" \
        >"$work/toy_ft.out" 2>"$work/toy_ft.err" &
    tpid=$!
    # toy's progress line "step k/N ..." reaches stderr as step k ends: stamp the
    # wall clock and toy's CPU ticks (utime + stime of /proc/PID/stat) at step 1
    # and at step N, for a steps-2..N rate comparable with PEFT's after warm-up.
    : >"$work/toy_marks"
    tail --pid="$tpid" -n +1 -f "$work/toy_ft.err" | while IFS= read -r line; do
        if [[ "$line" == "step 1/"* || "$line" == "step $N/"* ]]; then
            child="$(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null || true)"
            stat=()
            read -r -a stat <"/proc/${child%% *}/stat" 2>/dev/null || true
            echo "$EPOCHREALTIME $((${stat[13]:-0} + ${stat[14]:-0}))" >>"$work/toy_marks"
        fi
    done || true # the marks are extra: toy's own figure stands without them
    wait "$tpid" || { cat "$work/toy_ft.err" >&2; exit 1; }
    tps="$(sed -n 's/^final:.*tokens_per_s \([0-9.]*\).*/\1/p' "$work/toy_ft.out")"
    # tokens/s and CPU s per step over steps 2..N (empty when N is 1 or the marks are missing)
    tps2="" cpu2=""
    read -r tps2 cpu2 < <(awk -v n="$N" -v bt=$((B * T)) -v hz="$(getconf CLK_TCK)" \
        'NR == 1 { t0 = $1; c0 = $2 } NR == 2 && n > 1 && $1 > t0 {
             printf "%.1f %.2f\n", (n - 1) * bt / ($1 - t0), ($2 - c0) / hz / (n - 1) }' "$work/toy_marks") || true
    echo "  $tps tokens/s (toy's, all steps); steps 2..$N: ${tps2:--} tokens/s, ${cpu2:--} CPU s/step" >&2
    if [[ "$(max "$tps" "$toy_tps")" == "$tps" ]]; then
        toy_tps="$tps" toy_tps2="${tps2:--}" toy_cpu2="${cpu2:--}"
        toy_rss="$(rss_mib "$work/toy_ft.time")" toy_cpu="$(cpu_pct "$work/toy_ft.time")"
    fi

    # --- PEFT, each PyTorch build in turn.
    for kind in $TORCHES; do
        echo "round $round: PEFT, $kind torch (load average $(load)) ..." >&2
        /usr/bin/time -v -o "$work/peft_$kind.time" "${python[$kind]}" "$here/peft_lora_bench.py" \
            "${peft_args[@]}" --steps "$N" --warmup "$WARMUP" >"$work/peft_$kind.out" 2>"$work/peft_$kind.err" ||
            { cat "$work/peft_$kind.err" >&2; exit 1; }
        line="$(grep '^peft:' "$work/peft_$kind.out")"
        tps="$(sed -n 's/.*tokens_per_s \([0-9.]*\).*/\1/p' <<<"$line")"
        echo "  $tps tokens/s" >&2
        if [[ "$(max "$tps" "${peft_tps[$kind]:-}")" == "$tps" ]]; then
            peft_tps[$kind]="$tps"
            peft_train_rss[$kind]="$(sed -n 's/.*train_peak_rss_mib \([0-9.]*\).*/\1/p' <<<"$line")"
            peft_rss[$kind]="$(rss_mib "$work/peft_$kind.time")"
            peft_cpu[$kind]="$(cpu_pct "$work/peft_$kind.time")"
            peft_cpu_step[$kind]="$(sed -n 's/.*cpu_s_per_step \([0-9.]*\).*/\1/p' <<<"$line")"
        fi
        peft_desc[$kind]="$(grep -m1 '^torch ' "$work/peft_$kind.err")"
    done
done

# --- toy inference on the same model: the memory baseline of the LoRA claim.
# generate sizes its KV cache for the model's context (at most 4096) by default;
# the -c T run has the context of a training row.
echo "toy generate (load average $(load)) ..." >&2
for ctx in default "$T"; do
    cflag=()
    [[ "$ctx" == default ]] || cflag=(-c "$ctx")
    /usr/bin/time -v -o "$work/toy_gen_$ctx.time" "$toy" generate -m "$model" -p "Once upon a time" -n 32 \
        --temp 0 -t "$THREADS" "${cflag[@]}" >"$work/toy_gen.out" 2>"$work/toy_gen.err" ||
        { cat "$work/toy_gen.err" >&2; exit 1; }
done
gen_rss="$(rss_mib "$work/toy_gen_default.time")"
gen_rss_t="$(rss_mib "$work/toy_gen_$T.time")"

best=""
for kind in $TORCHES; do
    if [[ -z "$best" || "$(max "${peft_tps[$kind]}" "${peft_tps[$best]}")" == "${peft_tps[$kind]}" ]]; then
        best="$kind"
    fi
done

echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
# tokens/s: toy's own figure covers all N steps; "2..N" and PEFT's figures leave
# the first step out. CPU s/step: the process's CPU seconds per timed step (about
# THREADS x s/step when it had the cores to itself). CPU: over the whole run.
fmt="%-40s %9s %8s %10s %22s %6s\n"
# shellcheck disable=SC2059  # the format is a constant
{
    printf "$fmt" "engine" "tokens/s" "s/step" "CPU s/step" "peak RSS MiB" "CPU"
    printf "$fmt" "toy finetune ${COMPUTE:-f32} (all $N steps)" "$toy_tps" "$(per_step "$toy_tps")" "-" "$toy_rss" "$toy_cpu"
    if [[ "$toy_tps2" != - ]]; then
        printf "$fmt" "toy finetune ${COMPUTE:-f32} (steps 2..$N)" "$toy_tps2" "$(per_step "$toy_tps2")" "$toy_cpu2" "" ""
    fi
    for kind in $TORCHES; do
        printf "$fmt" "PEFT, $kind torch ($N steps after $WARMUP)" "${peft_tps[$kind]}" \
            "$(per_step "${peft_tps[$kind]}")" "${peft_cpu_step[$kind]}" \
            "${peft_rss[$kind]} (training ${peft_train_rss[$kind]})" "${peft_cpu[$kind]}"
    done
    printf "$fmt" "toy generate -n 32 (inference)" "-" "-" "-" "$gen_rss" "$(cpu_pct "$work/toy_gen_default.time")"
    printf "$fmt" "toy generate -n 32 -c $T (inference)" "-" "-" "-" "$gen_rss_t" "$(cpu_pct "$work/toy_gen_$T.time")"
}
echo
for kind in $TORCHES; do echo "PEFT $kind: ${peft_desc[$kind]}"; done
awk -v a="$toy_tps" -v a2="$toy_tps2" -v b="${peft_tps[$best]}" -v k="$best" 'BEGIN {
    printf "toy / PEFT (%s torch, the faster) tokens/s: %.2fx", k, a / b
    if (a2 != "-") printf " (%.2fx with both leaving the first step out)", a2 / b
    printf "\n" }'
awk -v f="$toy_rss" -v g="$gen_rss" -v g2="$gen_rss_t" -v b="$B" -v t="$T" 'BEGIN {
    printf "toy LoRA peak RSS / inference peak RSS: %.2fx (%.2fx of the -c %d run); training adds %.0f MiB over -c %d inference\n",
        f / g, f / g2, t, f - g2, t
    printf "  (for scale: the logits of one batch, B*T*n_vocab float32, are %.0f MiB)\n", b * t * 49152 * 4 / 1048576 }'
