{
  prometheusRules+:: {
    groups+: [
      {
        name: 'pbxware.rules',
        rules: [
          // --- extensions, per tenant ---------------------------------------------------------
          {
            record: 'pbxware:extensions_configured:sum',
            expr: 'sum without (status, protocol) (pbxware_extensions{%(pbxwareSelector)s})' % $._config,
          },
          {
            record: 'pbxware:extensions_enabled:sum',
            expr: |||
              sum without (status, protocol) (pbxware_extensions{%(pbxwareSelector)s, status="enabled"})
            ||| % $._config,
          },
          // online ÷ enabled extensions. Tenants without enabled extensions have no ratio (no 0/0).
          {
            record: 'pbxware:extensions_online:ratio',
            expr: |||
              pbxware_extensions_online{%(pbxwareSelector)s} / (pbxware:extensions_enabled:sum > 0)
            ||| % $._config,
          },
          // --- extensions, per system ---------------------------------------------------------
          {
            record: 'pbxware_system:extensions_configured:sum',
            expr: 'sum without (tenant) (pbxware:extensions_configured:sum)',
          },
          {
            record: 'pbxware_system:extensions_enabled:sum',
            expr: 'sum without (tenant) (pbxware:extensions_enabled:sum)',
          },
          {
            record: 'pbxware_system:extensions_online:sum',
            expr: 'sum without (tenant) (pbxware_extensions_online{%(pbxwareSelector)s})' % $._config,
          },
          {
            record: 'pbxware_system:extensions_online:ratio',
            expr: |||
              pbxware_system:extensions_online:sum / (pbxware_system:extensions_enabled:sum > 0)
            |||,
          },
          // --- polling --------------------------------------------------------------------------
          {
            record: 'pbxware:poll_requests:rate5m',
            expr: 'rate(pbxware_poll_requests_total{%(pbxwareSelector)s}[5m])' % $._config,
          },
          {
            record: 'pbxware:poll_errors:rate5m',
            expr: 'rate(pbxware_poll_errors_total{%(pbxwareSelector)s}[5m])' % $._config,
          },
          // share of an action's requests that failed, per reason
          {
            record: 'pbxware:poll_errors_per_request:ratio_rate5m',
            expr: |||
              pbxware:poll_errors:rate5m
                / ignoring (reason) group_left ()
              (pbxware:poll_requests:rate5m > 0)
            |||,
          },
          // --- health collectors ----------------------------------------------------------------
          // in use ÷ licensed maximum, per resource. A limit of 0 (not licensed, or PBXware's way of
          // saying "no limit") gives no ratio instead of +Inf; resources with only a limit
          // (channels, dids, voip_trunks, pstn_trunks) have none either.
          {
            record: 'pbxware:license_usage:ratio',
            expr: |||
              pbxware_license_in_use{%(pbxwareSelector)s} / (pbxware_license_limit{%(pbxwareSelector)s} > 0)
            ||| % $._config,
          },
          {
            record: 'pbxware_system:calls_active:sum',
            expr: 'sum without (tenant) (pbxware_calls_active{%(pbxwareSelector)s})' % $._config,
          },
          // active calls ÷ licensed channels (counting one channel per call); no ratio without a
          // channel limit.
          {
            record: 'pbxware_system:calls_per_channel:ratio',
            expr: |||
              pbxware_system:calls_active:sum
                / on (job, instance, system)
              (pbxware_license_limit{%(pbxwareSelector)s, resource="channels"} > 0)
            ||| % $._config,
          },
        ],
      },
      {
        name: 'pbxware-cdr.rules',
        rules: [
          {
            record: 'pbxware:cdr_calls:rate1h',
            expr: 'rate(pbxware_cdr_calls_total{%(pbxwareSelector)s}[1h])' % $._config,
          },
          {
            record: 'pbxware:cdr_call_duration_seconds:rate1h',
            expr: 'rate(pbxware_cdr_call_duration_seconds_total{%(pbxwareSelector)s}[1h])' % $._config,
          },
          // Outbound cost (the CDRs' Rating Cost) per second: the tenant dashboard's cost panel
          // and the overview's top spenders; PbxwareOutboundCallsUnusual compares raw increases.
          {
            record: 'pbxware:cdr_cost:rate1h',
            expr: 'rate(pbxware_cdr_cost_total{%(pbxwareSelector)s}[1h])' % $._config,
          },
          // MOS histogram buckets over the last hour, per tenant: histogram_quantile() of it is
          // the tenant's median call quality (PbxwareCallQualityLow, the tenant dashboard).
          {
            record: 'pbxware:cdr_call_mos_bucket:rate1h',
            expr: 'rate(pbxware_cdr_call_mos_bucket{%(pbxwareSelector)s}[1h])' % $._config,
          },
          // --- per tenant and direction -------------------------------------------------------
          {
            record: 'pbxware:cdr_asr:ratio_rate1h',
            expr: |||
              sum without (disposition) (pbxware:cdr_calls:rate1h{disposition="answered"})
                /
              (sum without (disposition) (pbxware:cdr_calls:rate1h) > 0)
            |||,
          },
          {
            record: 'pbxware:cdr_acd_seconds:ratio_rate1h',
            expr: |||
              pbxware:cdr_call_duration_seconds:rate1h
                /
              (sum without (disposition) (pbxware:cdr_calls:rate1h{disposition="answered"}) > 0)
            |||,
          },
          // --- per tenant, all directions -----------------------------------------------------
          {
            record: 'pbxware_tenant:cdr_asr:ratio_rate1h',
            expr: |||
              sum without (direction, disposition) (pbxware:cdr_calls:rate1h{disposition="answered"})
                /
              (sum without (direction, disposition) (pbxware:cdr_calls:rate1h) > 0)
            |||,
          },
          {
            record: 'pbxware_tenant:cdr_acd_seconds:ratio_rate1h',
            expr: |||
              sum without (direction) (pbxware:cdr_call_duration_seconds:rate1h)
                /
              (sum without (direction, disposition) (pbxware:cdr_calls:rate1h{disposition="answered"}) > 0)
            |||,
          },
          // --- per system ---------------------------------------------------------------------
          {
            record: 'pbxware_system:cdr_asr:ratio_rate1h',
            expr: |||
              sum without (tenant, direction, disposition) (pbxware:cdr_calls:rate1h{disposition="answered"})
                /
              (sum without (tenant, direction, disposition) (pbxware:cdr_calls:rate1h) > 0)
            |||,
          },
          {
            record: 'pbxware_system:cdr_acd_seconds:ratio_rate1h',
            expr: |||
              sum without (tenant, direction) (pbxware:cdr_call_duration_seconds:rate1h)
                /
              (sum without (tenant, direction, disposition) (pbxware:cdr_calls:rate1h{disposition="answered"}) > 0)
            |||,
          },
        ],
      },
    ],
  },
}
