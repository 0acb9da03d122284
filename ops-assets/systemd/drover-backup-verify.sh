#!/bin/sh
# Verify the newest Drover backup and record the result for node_exporter's
# textfile collector, so Prometheus alerts when a backup would not restore
# (DroverBackupVerifyFailed) or none was verified for 8 days
# (DroverBackupNotVerified). Run by drover-backup-verify.service.
#   DROVER_BACKUP_DIR  where backups are (default $DROVER_DATA_DIR/backups, /var/lib/drover/backups)
#   TEXTFILE_DIR       node_exporter's --collector.textfile.directory
#   DROVER             the drover command (default: drover on PATH, else /opt/drover/bin/drover)
# Exit status: drover backup verify's (0 good, 1 bad), 2 when there is no backup.
set -eu
dir=${DROVER_BACKUP_DIR:-${DROVER_DATA_DIR:-/var/lib/drover}/backups}
textfile_dir=${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}
drover=${DROVER:-$(command -v drover || echo /opt/drover/bin/drover)}

# Backup directories are named drover-backup-<ISO time>: the last in sort order is the newest.
newest=$(find "$dir" -mindepth 1 -maxdepth 1 -type d -name 'drover-backup-*' 2>/dev/null | sort | tail -n 1)
status=0
if [ -z "$newest" ]; then
  echo "no backup in $dir" >&2
  status=2
else
  "$drover" backup verify "$newest" || status=$?
fi

success=0
[ "$status" -eq 0 ] && success=1
# Written aside and renamed, so node_exporter never reads half a file.
tmp="$textfile_dir/.drover_backup_verify.prom.$$"
cat > "$tmp" <<PROM
# HELP drover_backup_verify_success 1 if the newest backup passed drover backup verify, 0 if not (or none found).
# TYPE drover_backup_verify_success gauge
drover_backup_verify_success $success
# HELP drover_backup_verify_timestamp_seconds When the last verification ran.
# TYPE drover_backup_verify_timestamp_seconds gauge
drover_backup_verify_timestamp_seconds $(date +%s)
PROM
chmod 0644 "$tmp"
mv "$tmp" "$textfile_dir/drover_backup_verify.prom"
exit "$status"
