-- Parts catalogue with a summary of the supplier offers for each part.
WITH offers AS (
    SELECT
        ps_partkey AS part_key,
        count(*) AS supplier_count,
        min(ps_supplycost) AS min_supply_cost,
        CAST(sum(ps_availqty) AS BIGINT) AS available_quantity
    FROM partsupp
    GROUP BY ps_partkey
)
SELECT
    p.p_partkey AS part_key,
    p.p_name AS part_name,
    p.p_mfgr AS manufacturer,
    p.p_brand AS brand,
    p.p_type AS part_type,
    p.p_size AS size,
    p.p_container AS container,
    p.p_retailprice AS retail_price,
    coalesce(o.supplier_count, 0) AS supplier_count,
    o.min_supply_cost,
    coalesce(o.available_quantity, 0) AS available_quantity
FROM part AS p
LEFT JOIN offers AS o ON o.part_key = p.p_partkey
