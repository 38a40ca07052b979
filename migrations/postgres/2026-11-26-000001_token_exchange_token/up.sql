-- The session token of a bound exchanger, sealed (AES-GCM) so it can be handed out once.
ALTER TABLE session_token_exchanges ADD COLUMN session_token_sealed text NULL;
