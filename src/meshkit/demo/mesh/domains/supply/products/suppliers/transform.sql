-- Supplier master data with nation and region names; flags suppliers with complaints on file.
SELECT
    s.s_suppkey AS supplier_key,
    s.s_name AS supplier_name,
    s.s_address AS address,
    s.s_phone AS phone,
    s.s_nationkey AS nation_key,
    n.n_name AS nation,
    r.r_name AS region,
    s.s_acctbal AS account_balance,
    s.s_comment LIKE '%Customer%Complaints%' AS has_complaints
FROM supplier AS s
JOIN nation AS n ON n.n_nationkey = s.s_nationkey
JOIN region AS r ON r.r_regionkey = n.n_regionkey
