// The Grafana dashboards. Their panels are kept as dashboard JSON under dashboards/ (what
// Grafana exports, so a panel can be changed in Grafana and pasted back); everything a
// deployment configures is set here from _config: the job variable's selector, tags,
// editable, refresh.
local sources = {
  'pbxware-overview.json': import 'dashboards/pbxware-overview.json',
  'pbxware-tenant.json': import 'dashboards/pbxware-tenant.json',
  'pbxware-exporter.json': import 'dashboards/pbxware-exporter.json',
};

{
  local config = $._config,

  local jobVariable(v) = v {
    query: {
      query: 'label_values(pbxware_up{%s}, job)' % config.dashboardJobSelector,
      refId: 'StandardVariableQuery',
    },
    definition: self.query.query,
  },

  local configure(dashboard) = dashboard {
    id: null,
    editable: config.dashboardEditable,
    tags: config.dashboardTags,
    refresh: config.dashboardRefresh,
    timezone: config.dashboardTimezone,
    templating+: {
      list: [
        if v.name == 'job' then jobVariable(v) else v
        for v in super.list
      ],
    },
  },

  grafanaDashboards+:: {
    [name]: configure(sources[name])
    for name in std.objectFields(sources)
  },
}
