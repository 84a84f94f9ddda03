# Sourced by the capture scripts (set TIMINGS first): starts the Markdown table of step wall times in $TIMINGS and
# defines `timed "<step name>" command...`, which runs a step and appends its wall time.
printf '| step | wall time (s) |\n|---|---|\n' > "$TIMINGS"
timed() {
  local name="$1"; shift
  local start=$SECONDS
  echo "== $name"
  "$@"
  printf '| %s | %d |\n' "$name" $((SECONDS - start)) >> "$TIMINGS"
}
