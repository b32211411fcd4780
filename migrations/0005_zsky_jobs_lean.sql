-- Fewer D1 rows written per ZSky job. No query reads zsky_jobs by account (jobs are
-- read by job_id, retention by its own partial index): the index cost one extra row per
-- submitted job. See docs/storage.md.
DROP INDEX zsky_jobs_by_account;
