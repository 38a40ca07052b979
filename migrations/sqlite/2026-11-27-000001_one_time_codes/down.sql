DROP TABLE selfservice_codes;
