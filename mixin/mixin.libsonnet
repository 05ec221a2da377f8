// The pbxware-exporter monitoring mixin: prometheusRules (recording rules), prometheusAlerts
// and grafanaDashboards, all configured by _config (config.libsonnet).
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet')
