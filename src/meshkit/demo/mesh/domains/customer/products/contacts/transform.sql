-- CRM contacts, cleaned: lower-case emails, E.164 phone numbers, explicit types.
-- The CRM keeps phones as typed ('+27 918 335 1736'); E.164 keeps only '+' and the digits.
SELECT
    CAST(customer_key AS BIGINT) AS customer_key,
    lower(trim(email)) AS email,
    split_part(lower(trim(email)), '@', 2) AS email_domain,
    CASE
        WHEN phone IS NOT NULL THEN '+' || regexp_replace(phone, '[^0-9]', '', 'g')
    END AS phone_e164,
    CAST(marketing_opt_in AS BOOLEAN) AS marketing_opt_in,
    CAST(updated_at AS TIMESTAMP) AS updated_at
FROM crm_contacts
