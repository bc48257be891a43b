-- Delivery KPIs per supplier over every order line it shipped.
WITH per_supplier AS (
    SELECT
        supplier_key,
        count(*) AS shipped_lines,
        sum(quantity) AS shipped_quantity,
        sum(net_amount) AS net_revenue,
        avg(CASE WHEN is_late THEN 0.0 ELSE 1.0 END) AS on_time_rate,
        avg(date_diff('day', ship_date, receipt_date)) AS avg_transit_days,
        avg(CASE WHEN return_flag = 'R' THEN 1.0 ELSE 0.0 END) AS return_rate,
        min(ship_date) AS first_ship_date,
        max(ship_date) AS last_ship_date
    FROM order_lines
    GROUP BY supplier_key
)
SELECT
    s.supplier_key,
    s.supplier_name,
    s.nation,
    s.region,
    s.has_complaints,
    coalesce(p.shipped_lines, 0) AS shipped_lines,
    CAST(coalesce(p.shipped_quantity, 0) AS DECIMAL(18, 2)) AS shipped_quantity,
    CAST(coalesce(p.net_revenue, 0) AS DECIMAL(18, 2)) AS net_revenue,
    CAST(p.on_time_rate AS DOUBLE) AS on_time_rate,
    CAST(p.avg_transit_days AS DOUBLE) AS avg_transit_days,
    CAST(p.return_rate AS DOUBLE) AS return_rate,
    p.first_ship_date,
    p.last_ship_date
FROM suppliers AS s
LEFT JOIN per_supplier AS p ON p.supplier_key = s.supplier_key
