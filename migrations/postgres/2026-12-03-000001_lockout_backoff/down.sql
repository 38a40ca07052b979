ALTER TABLE brute_force_counters DROP COLUMN lockouts;
