-- Lifetime revenue per customer, from the sales facts and the customer master data.
WITH order_totals AS (
    SELECT
        o.order_key,
        o.customer_key,
        o.order_date,
        sum(l.net_amount) AS net_amount,
        sum(CASE WHEN l.return_flag = 'R' THEN l.net_amount ELSE 0 END) AS returned_amount
    FROM orders AS o
    JOIN order_lines AS l ON l.order_key = o.order_key
    GROUP BY o.order_key, o.customer_key, o.order_date
),
per_customer AS (
    SELECT
        customer_key,
        count(*) AS order_count,
        sum(net_amount) AS net_revenue,
        sum(returned_amount) AS returned_revenue,
        min(order_date) AS first_order_date,
        max(order_date) AS last_order_date
    FROM order_totals
    GROUP BY customer_key
)
SELECT
    c.customer_key,
    c.market_segment,
    c.nation,
    c.region,
    coalesce(p.order_count, 0) AS order_count,
    CAST(coalesce(p.net_revenue, 0) AS DECIMAL(18, 2)) AS net_revenue,
    CAST(coalesce(p.returned_revenue, 0) AS DECIMAL(18, 2)) AS returned_revenue,
    CAST(p.net_revenue / p.order_count AS DECIMAL(18, 2)) AS average_order_value,
    p.first_order_date,
    p.last_order_date
FROM customers AS c
LEFT JOIN per_customer AS p ON p.customer_key = c.customer_key
