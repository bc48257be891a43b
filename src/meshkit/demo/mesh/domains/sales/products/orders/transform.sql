-- Order headers from the ERP, with business names and the order year.
SELECT
    o_orderkey AS order_key,
    o_custkey AS customer_key,
    o_orderstatus AS order_status,
    o_totalprice AS total_price,
    o_orderdate AS order_date,
    year(o_orderdate) AS order_year,
    o_orderpriority AS order_priority,
    o_clerk AS clerk,
    o_shippriority AS ship_priority,
    current_timestamp AT TIME ZONE 'UTC' AS loaded_at
FROM orders
