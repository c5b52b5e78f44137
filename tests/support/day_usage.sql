-- Set-up and inspection of ocr_gemini_day_usage (migrations/0008) for the tests of
-- the durable day count (tests/*/test_day_usage_*.py).

-- name: day_usage_set
INSERT INTO ocr_gemini_day_usage (model, quota_day, requests)
VALUES ($1, $2, $3)
ON CONFLICT (model, quota_day) DO UPDATE SET requests = excluded.requests;

-- name: day_usage_row
SELECT requests, updated_at FROM ocr_gemini_day_usage WHERE model = $1 AND quota_day = $2;
