-- How many times in a row a brute-force bucket was locked: each lock lasts twice the last.
ALTER TABLE brute_force_counters ADD COLUMN lockouts integer NOT NULL DEFAULT 0;
