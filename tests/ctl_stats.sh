#!/bin/sh
# ctl_stats.sh: placeholder (being written).
exit 0
