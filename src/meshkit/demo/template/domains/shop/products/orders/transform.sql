-- Web shop orders with explicit types and the order amount.
SELECT
    CAST(order_id AS BIGINT) AS order_id,
    CAST(ordered_at AS TIMESTAMP) AS ordered_at,
    upper(country) AS country,
    sku,
    CAST(quantity AS INTEGER) AS quantity,
    CAST(unit_price AS DECIMAL(10, 2)) AS unit_price,
    CAST(quantity * CAST(unit_price AS DECIMAL(10, 2)) AS DECIMAL(12, 2)) AS amount,
    lower(status) AS status,
    lower(email) AS email
FROM shop_orders
