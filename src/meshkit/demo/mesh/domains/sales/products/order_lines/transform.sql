-- ERP order lines, renamed, with the amounts derived from price, discount and tax.
SELECT
    l_orderkey AS order_key,
    l_linenumber AS line_number,
    l_partkey AS part_key,
    l_suppkey AS supplier_key,
    l_quantity AS quantity,
    l_extendedprice AS extended_price,
    l_discount AS discount,
    l_tax AS tax,
    CAST(l_extendedprice * (1 - l_discount) AS DECIMAL(15, 2)) AS net_amount,
    CAST(l_extendedprice * (1 - l_discount) * (1 + l_tax) AS DECIMAL(15, 2)) AS gross_amount,
    l_returnflag AS return_flag,
    l_linestatus AS line_status,
    l_shipdate AS ship_date,
    l_commitdate AS commit_date,
    l_receiptdate AS receipt_date,
    l_receiptdate > l_commitdate AS is_late,
    l_shipinstruct AS ship_instructions,
    l_shipmode AS ship_mode
FROM lineitem
