#!/usr/bin/env bash
# The demo (README): installs what is missing, brings up PostgreSQL and Redis, then
# `ocr-pool demo`: a demo database, migrated; sample index and acte PDFs queued; the
# Gemini simulator (real Gemini when GEMINI_API_KEY is set); a pool with its status
# panel until the queue is drained; a summary. Extra arguments go to `ocr-pool demo`.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
eval "$(bash scripts/services.sh)"

export REDIS_URL=$OCR_TEST_REDIS_URL
ocr-pool demo --admin-url "$OCR_TEST_DATABASE_URL" "$@"
DATABASE_URL=${DATABASE_URL:-${OCR_TEST_DATABASE_URL%/postgres}/ocr_pool_demo} ocr-pool status
