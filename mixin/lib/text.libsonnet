{
  // fold(s): the lines of a text block joined with single spaces, like YAML's `>-`. Lets the
  // long alert descriptions be written over several lines and still render as one line.
  // Leading and trailing blanks of each line go, so pieces joined with + may start a line.
  fold(s):: std.join(' ', std.filter(function(l) l != '', [std.stripChars(l, ' ') for l in std.split(s, '\n')])),
  // pct(0.9) = '90%' (a threshold ratio as people read it in a description).
  pct(ratio):: std.toString(std.round(ratio * 1000) / 10) + '%',
  // Alert templates: " (Name)" of the alert's tenant (labels job, instance, system, tenant),
  // looked up in pbxware_tenant_info; nothing when the exporter has no name for it.
  tenantName:: '{{ with printf "pbxware_tenant_info{job=%q,instance=%q,system=%q,tenant=%q}" .Labels.job .Labels.instance .Labels.system .Labels.tenant | query }}{{ with first . }} ({{ label "name" . }}){{ end }}{{ end }}',
  // The value of a query about the alert's tenant, e.g. queryTenant('pbxware_extensions_online').
  // The series must carry job, instance, system and tenant; `extra` adds matchers.
  queryTenant(metric, extra='', format=''):: '{{ with printf "' + metric + '{job=%q,instance=%q,system=%q,tenant=%q' + extra + '}" .Labels.job .Labels.instance .Labels.system .Labels.tenant | query }}{{ with first . }}{{ value .' + format + ' }}{{ end }}{{ end }}',
}
