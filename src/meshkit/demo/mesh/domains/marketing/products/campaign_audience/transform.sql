-- Contacts who opted in to marketing email, with a value tier from their lifetime revenue.
SELECT
    k.customer_key,
    c.customer_name,
    k.email,
    c.market_segment,
    c.region,
    r.net_revenue,
    r.last_order_date,
    CASE
        WHEN r.order_count = 0 THEN 'prospect'
        WHEN r.net_revenue >= 3500000 THEN 'platinum'
        WHEN r.net_revenue >= 2000000 THEN 'gold'
        WHEN r.net_revenue >= 1000000 THEN 'silver'
        ELSE 'bronze'
    END AS value_tier,
    k.updated_at AS consent_updated_at
FROM contacts AS k
JOIN customers AS c ON c.customer_key = k.customer_key
JOIN revenue AS r ON r.customer_key = k.customer_key
WHERE k.marketing_opt_in
  AND k.email IS NOT NULL
