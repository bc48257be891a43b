-- Customer master data, with nation and region names resolved from the ERP reference tables.
SELECT
    c.c_custkey AS customer_key,
    c.c_name AS customer_name,
    c.c_address AS address,
    c.c_phone AS phone,
    c.c_nationkey AS nation_key,
    n.n_name AS nation,
    r.r_name AS region,
    c.c_mktsegment AS market_segment,
    c.c_acctbal AS account_balance,
    current_timestamp AT TIME ZONE 'UTC' AS loaded_at
FROM customer AS c
JOIN nation AS n ON n.n_nationkey = c.c_nationkey
JOIN region AS r ON r.r_regionkey = n.n_regionkey
