#!/usr/bin/env bash
# The demo (README): installs what is missing, brings up PostgreSQL and Redis,
# creates a demo database, migrates it, writes sample PDFs, queues them and
# shows the queue.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
eval "$(bash scripts/services.sh)"

samples=.services/demo-samples
DATABASE_URL=$(python -m pool.demo "$OCR_TEST_DATABASE_URL" ocr_pool_demo "$samples")
export DATABASE_URL REDIS_URL=$OCR_TEST_REDIS_URL
ocr-pool migrate
ocr-pool enqueue "$samples"/index-*.pdf --source index
ocr-pool enqueue "$samples"/acte-*.pdf --source acte
ocr-pool status
