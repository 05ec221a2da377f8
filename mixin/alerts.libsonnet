local text = import 'lib/text.libsonnet';
local fold = text.fold;
local pct = text.pct;
local tenantName = text.tenantName;
local queryTenant = text.queryTenant;

{
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'pbxware.alerts',
        rules: [
          // --- the exporter -----------------------------------------------------------------------
          {
            alert: 'PbxwareExporterDown',
            expr: 'up{%(pbxwareSelector)s} == 0' % $._config,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'PBXware exporter cannot be scraped',
              description: fold(|||
                Prometheus has failed to scrape the PBXware exporter {{ $labels.instance }} for 5 minutes
                (up{job="{{ $labels.job }}", instance="{{ $labels.instance }}"} == 0). Every PBXware metric
                from it is missing, so no other PBXware alert can fire for the systems it polls.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwareexporterdown',
            },
          },
          // No target of the job at all (every pod pending, a ServiceMonitor that selects nothing, a
          // renamed job): up{} itself is gone, so PbxwareExporterDown cannot fire.
          {
            alert: 'PbxwareExporterAbsent',
            expr: 'absent(up{%(pbxwareSelector)s})' % $._config,
            'for': '10m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus has no PBXware exporter target',
              description: fold(|||
                Prometheus has had no target of the PBXware exporter ({{ $labels.job }}) for 10 minutes, so
                no PBXware system is monitored and no other PBXware alert can fire. Check the scrape
                config, the ServiceMonitor and whether the exporter's pods are running.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwareexporterabsent',
            },
          },
          // --- reaching the PBX ---------------------------------------------------------------------
          {
            alert: 'PbxwareSystemDown',
            expr: 'pbxware_up{%(pbxwareSelector)s} == 0' % $._config,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'PBXware system cannot be polled',
              description: fold(|||
                The exporter {{ $labels.instance }} has failed for 5 minutes to read the tenant list, CPU,
                memory or disk of PBXware system {{ $labels.system }} through its API. Check
                pbxware_poll_errors_total{system="{{ $labels.system }}"} for the reason.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwaresystemdown',
            },
          },
          // A system that had a pbxware_up series in the last hour and has none now: its shard is not
          // scraped (a pod pending, replicas != --shard.count, a target dropped by relabelling) or it
          // was removed from the config. Compared without `instance`: a system that moves to another
          // replica is not missing. Removing a system on purpose fires this for up to an hour (silence it).
          {
            alert: 'PbxwareSystemMissing',
            expr: |||
              max by (job, system) (max_over_time(pbxware_up{%(pbxwareSelector)s}[1h]))
              unless on (job, system)
              pbxware_up{%(pbxwareSelector)s}
            ||| % $._config,
            'for': '10m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A PBXware system is no longer monitored',
              description: fold(|||
                PBXware system {{ $labels.system }} was scraped from job {{ $labels.job }} within the last
                hour but has had no pbxware_up series for 10 minutes: no exporter replica serves it, so
                none of its alerts can fire.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwaresystemmissing',
            },
          },
          // Only the core actions, which run every poll. Optional collectors (services, licensing,
          // trunks, archiving, monitor, …) may have longer intervals of their own that Prometheus
          // does not know; their failures show in PbxwarePollErrorsHigh.
          {
            alert: 'PbxwarePollsStale',
            expr: |||
              time() - pbxware_last_poll_success_timestamp_seconds{%(pbxwareSelector)s, action=~"pbxware.tenant.list|pbxware.dashboard.cpu|pbxware.dashboard.memory|pbxware.dashboard.disk_usage|pbxware.ext.list|pbxware.dashboard.ext_online"}
                > on (job, instance, system) group_left ()
              3 * pbxware_poll_interval_seconds{%(pbxwareSelector)s}
            ||| % $._config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware data is stale',
              description: fold(|||
                Action {{ $labels.action }} on PBXware system {{ $labels.system }} last completed without
                errors {{ $value | humanizeDuration }} ago, more than 3 poll intervals. The exporter keeps
                serving older values for it.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarepollsstale',
            },
          },
          // Per action and reason, so that one collector refused by a scoped key is caught too. The
          // 30m window still holds requests of collectors polled every 15 minutes. Two things keep it
          // from outliving the trouble:
          // - it ends once that reason has stopped: requests of the action in the last 10 minutes
          //   and none failed with it (not when the 30m ratio has fallen below the threshold,
          //   which takes up to half an hour);
          // - it is quiet during and for 10 minutes after an outage of the whole system
          //   (PbxwareSystemDown covers that; its errors are not news once it is back).
          {
            alert: 'PbxwarePollErrorsHigh',
            expr: |||
              (
                  rate(pbxware_poll_errors_total{%(pbxwareSelector)s}[30m])
                    / ignoring (reason) group_left ()
                  (rate(pbxware_poll_requests_total{%(pbxwareSelector)s}[30m]) > 0)
                > %(pollErrorsRatio)s
              )
              unless on (job, instance, system, action, reason)
              (
                  increase(pbxware_poll_errors_total{%(pbxwareSelector)s}[10m]) == 0
                and on (job, instance, system, action)
                  increase(pbxware_poll_requests_total{%(pbxwareSelector)s}[10m]) > 0
              )
              unless on (job, instance, system)
              (min_over_time(pbxware_up{%(pbxwareSelector)s}[10m]) == 0)
            ||| % $._config,
  'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Many PBXware API requests fail',
              description: fold(|||
                {{ $value | humanizePercentage }} of the {{ $labels.action }} requests to PBXware system
                {{ $labels.system }} failed with reason "{{ $labels.reason }}" over the last 30 minutes
                (threshold %s), and they still fail.
              ||| % pct($._config.pollErrorsRatio)),
              runbook_url: $._config.runbookURLPattern % 'pbxwarepollerrorshigh',
            },
          },
          {
            alert: 'PbxwarePollCycleSlow',
            expr: |||
              pbxware_poll_cycle_duration_seconds{%(pbxwareSelector)s}
                > 0.8 * pbxware_poll_interval_seconds{%(pbxwareSelector)s}
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware poll cycle takes almost the whole poll interval',
              description: fold(|||
                A poll cycle of PBXware system {{ $labels.system }} takes {{ $value | humanizeDuration }},
                more than 80% of its poll interval. Polls will start to fall behind and the data to go
                stale.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarepollcycleslow',
            },
          },
          {
            alert: 'PbxwareConfigReloadFailed',
            expr: 'pbxware_exporter_config_last_reload_successful{%(pbxwareSelector)s} == 0' % $._config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware exporter config reload failed',
              description: fold(|||
                The last config reload of the PBXware exporter {{ $labels.instance }} failed; it keeps
                running the previous config, so the change you made is not in effect.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwareconfigreloadfailed',
            },
          },
          {
            // The listener's TLS and basic-auth settings: a reload that fails keeps the old
            // ones (auth never switches off), which must not go unnoticed either.
            alert: 'PbxwareWebConfigReloadFailed',
            expr: 'pbxware_exporter_web_config_last_reload_successful{%(pbxwareSelector)s} == 0' % $._config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware exporter web config reload failed',
              description: fold(|||
                The last reload of the web config (TLS, basic auth) of the PBXware exporter
                {{ $labels.instance }} failed; it keeps serving with the previous settings, so
                the change you made (a renewed certificate, a new user) is not in effect.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarewebconfigreloadfailed',
            },
          },
          {
            alert: 'PbxwareTenantDown',
            expr: 'pbxware_tenant_up{%(pbxwareSelector)s} == 0' % $._config,
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware tenant cannot be polled',
              description: fold(|||
                Polling tenant {{ $labels.tenant }}{{ with printf
                "pbxware_tenant_info{job=%q,instance=%q,system=%q,tenant=%q}" .Labels.job .Labels.instance
                .Labels.system .Labels.tenant | query }}{{ with first . }} ({{ label "name" . }}){{ end }}{{
                end }} on PBXware system {{ $labels.system }} (extension list or online count) has failed
                for 10 minutes; its extension numbers are not current.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwaretenantdown',
            },
          },
          // --- the PBX host ---------------------------------------------------------------------------
          {
            alert: 'PbxwareCpuHigh',
            expr: 'avg_over_time(pbxware_cpu_usage_ratio{%(pbxwareSelector)s}[10m]) > %(cpuHighRatio)s' % $._config,
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware CPU usage is high',
              description: fold(|||
                PBXware system {{ $labels.system }} has used {{ $value | humanizePercentage }} CPU on
                average over the last 10 minutes (threshold %s). Call quality may suffer.
              ||| % pct($._config.cpuHighRatio)),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecpuhigh',
            },
          },
          {
            alert: 'PbxwareMemoryHigh',
            expr: 'pbxware_memory_usage_ratio{%(pbxwareSelector)s} > %(memoryHighRatio)s' % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware memory usage is high',
              description: fold(|||
                PBXware system {{ $labels.system }} has used {{ $value | humanizePercentage }} of its
                memory for 15 minutes (threshold %s).
              ||| % pct($._config.memoryHighRatio)),
              runbook_url: $._config.runbookURLPattern % 'pbxwarememoryhigh',
            },
          },
          {
            alert: 'PbxwareDiskFillingUp',
            expr: |||
              predict_linear(pbxware_disk_usage_ratio{%(pbxwareSelector)s}[6h], 24 * 3600) >= 1
              and
              pbxware_disk_usage_ratio{%(pbxwareSelector)s} > 0.6
            ||| % $._config,
            'for': '1h',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware disk will be full within a day',
              description: fold(|||
                The disk of PBXware system {{ $labels.system }} is {{ with printf
                "pbxware_disk_usage_ratio{job=%q,instance=%q,system=%q}" .Labels.job .Labels.instance
                .Labels.system | query }}{{ with first . }}{{ value . | humanizePercentage }}{{ end }}{{ end
                }} full and, at the rate of the last 6 hours, will be full within 24 hours.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarediskfillingup',
            },
          },
          {
            alert: 'PbxwareDiskFillingUp',
            expr: |||
              predict_linear(pbxware_disk_usage_ratio{%(pbxwareSelector)s}[2h], 4 * 3600) >= 1
              and
              pbxware_disk_usage_ratio{%(pbxwareSelector)s} > 0.8
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'PBXware disk will be full within 4 hours',
              description: fold(|||
                The disk of PBXware system {{ $labels.system }} is {{ with printf
                "pbxware_disk_usage_ratio{job=%q,instance=%q,system=%q}" .Labels.job .Labels.instance
                .Labels.system | query }}{{ with first . }}{{ value . | humanizePercentage }}{{ end }}{{ end
                }} full and, at the rate of the last 2 hours, will be full within 4 hours.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarediskfillingup',
            },
          },
          {
            alert: 'PbxwareDiskAlmostFull',
            expr: 'pbxware_disk_usage_ratio{%(pbxwareSelector)s} > %(diskAlmostFullRatio)s' % $._config,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'PBXware disk is almost full',
              description: fold(|||
                The disk of PBXware system {{ $labels.system }} is {{ $value | humanizePercentage }} full
                (threshold %s). Recordings, voicemail and CDRs fail when it is full.
              ||| % pct($._config.diskAlmostFullRatio)),
              runbook_url: $._config.runbookURLPattern % 'pbxwarediskalmostfull',
            },
          },
          // --- extensions -------------------------------------------------------------------------------
          // The online ratio fell below 70% of its average over the hour before the last 15 minutes
          // and by more than 10 points, in a tenant with at least 5 enabled extensions. A drop to 0
          // is PbxwareAllExtensionsOffline instead.
          {
            alert: 'PbxwareExtensionsOnlineDropped',
            expr: |||
              pbxware:extensions_online:ratio
                < 0.7 * avg_over_time(pbxware:extensions_online:ratio[1h] offset 15m)
              and
              avg_over_time(pbxware:extensions_online:ratio[1h] offset 15m) - pbxware:extensions_online:ratio > 0.1
              and
              pbxware_extensions_online{%(pbxwareSelector)s} > 0
              and
              pbxware:extensions_enabled:sum >= 5
            ||| % $._config,
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Share of online extensions dropped sharply',
              description: fold(|||
                Only {{ $value | humanizePercentage }} of the enabled extensions of tenant {{ $labels.tenant
                }}{{ with printf "pbxware_tenant_info{job=%q,instance=%q,system=%q,tenant=%q}" .Labels.job
                .Labels.instance .Labels.system .Labels.tenant | query }}{{ with first . }} ({{ label "name"
                . }}){{ end }}{{ end }} on PBXware system {{ $labels.system }} are online, against {{ with
                printf
                "avg_over_time(pbxware:extensions_online:ratio{job=%q,instance=%q,system=%q,tenant=%q}[1h]
                offset 15m)" .Labels.job .Labels.instance .Labels.system .Labels.tenant | query }}{{ with
                first . }}{{ value . | humanizePercentage }}{{ end }}{{ end }} on average in the hour
                before.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwareextensionsonlinedropped',
            },
          },
          // Only tenants where it means something: at least allOfflineMinEnabled enabled extensions
          // (a one-phone tenant's phone being unplugged is no incident) and a phone online at some
          // point in the last day (a dormant tenant would fire forever). After a day with no phone
          // online the alert ends on its own.
          {
            alert: 'PbxwareAllExtensionsOffline',
            expr: |||
              pbxware_extensions_online{%(pbxwareSelector)s} == 0
              and on (job, instance, system, tenant)
              pbxware:extensions_enabled:sum >= %(allOfflineMinEnabled)s
              and on (job, instance, system, tenant)
              max_over_time(pbxware_extensions_online{%(pbxwareSelector)s}[1d]) > 0
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Every extension of a PBXware tenant is offline',
              description: fold(
                'None of the ' + queryTenant('pbxware:extensions_enabled:sum') + ' enabled extensions of tenant {{ $labels.tenant }}' + tenantName + ' ' + |||
                  on PBXware system {{ $labels.system }} has been online for 15 minutes, although some
                  were online within the last day.
                |||
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwareallextensionsoffline',
            },
          },
          {
            alert: 'PbxwareExtensionSeriesDropped',
            expr: 'pbxware_extension_series_dropped{%(pbxwareSelector)s} > 0' % $._config,
            'for': '30m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Per-extension series are cut off by extension_metrics_limit',
              description: fold(|||
                The exporter {{ $labels.instance }} leaves {{ $value }} extensions of PBXware system {{
                $labels.system }} out of the per-extension series because of extension_metrics_limit;
                per-extension panels are incomplete.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwareextensionseriesdropped',
            },
          },
          // --- health collectors: PBX services ----------------------------------------------------
          // Names as pbxware.dashboard.services reports them. Asterisk (every call) and the
          // database (configuration, CDRs, the web UI) are critical; the rest is a warning. Adapt the
          // regex (in both rules) if your PBX names them differently: see the runbook.
          {
            alert: 'PbxwareServiceDown',
            expr: |||
              pbxware_service_up{%(pbxwareSelector)s, service=~"asterisk|mysql|mysqld|mariadb"} == 0
            ||| % $._config,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A core PBXware service is not running',
              description: fold(|||
                PBXware system {{ $labels.system }} has reported service {{ $labels.service }} as not
                running for 5 minutes (pbxware.dashboard.services). Without Asterisk no call goes through;
                without the database PBXware cannot route, log or configure calls.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwareservicedown',
            },
          },
          {
            alert: 'PbxwareServiceDown',
            expr: |||
              pbxware_service_up{%(pbxwareSelector)s, service!~"asterisk|mysql|mysqld|mariadb"} == 0
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PBXware service is not running',
              description: fold(|||
                PBXware system {{ $labels.system }} has reported service {{ $labels.service }} as not
                running for 15 minutes (pbxware.dashboard.services).
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwareservicedown',
            },
          },
          // --- health collectors: registrations, licences, channels -------------------------------
          // More than a quarter of a tenant's SIP registrations failed (failed ÷ (success + failed);
          // lagged ones are left out), and at least 5 of them. A tenant with none has no ratio.
          {
            alert: 'PbxwareSipRegistrationsFailing',
            expr: |||
              sum without (state) (pbxware_sip_registrations{%(pbxwareSelector)s, state="failed"})
                /
              sum without (state) (pbxware_sip_registrations{%(pbxwareSelector)s, state=~"success|failed"})
              > 0.25
              and ignoring (state)
              pbxware_sip_registrations{%(pbxwareSelector)s, state="failed"} >= 5
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Many SIP registrations of a PBXware tenant fail',
              description: fold(|||
                {{ $value | humanizePercentage }} of the SIP registrations of tenant {{ $labels.tenant }}{{
                with printf "pbxware_tenant_info{job=%q,instance=%q,system=%q,tenant=%q}" .Labels.job
                .Labels.instance .Labels.system .Labels.tenant | query }}{{ with first . }} ({{ label "name"
                . }}){{ end }}{{ end }} on PBXware system {{ $labels.system }} have been failing for 15
                minutes ({{ with printf
                "pbxware_sip_registrations{job=%q,instance=%q,system=%q,tenant=%q,state=\"failed\"}"
                .Labels.job .Labels.instance .Labels.system .Labels.tenant | query }}{{ with first . }}{{
                value . }}{{ end }}{{ end }} failed, {{ with printf
                "pbxware_sip_registrations{job=%q,instance=%q,system=%q,tenant=%q,state=\"success\"}"
                .Labels.job .Labels.instance .Labels.system .Labels.tenant | query }}{{ with first . }}{{
                value . }}{{ end }}{{ end }} succeeded).
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwaresipregistrationsfailing',
            },
          },
          {
            alert: 'PbxwareLicenseNearlyExhausted',
            expr: 'pbxware:license_usage:ratio > 0.9',
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PBXware licence is nearly used up',
              description: fold(|||
                PBXware system {{ $labels.system }} uses {{ $value | humanizePercentage }} of its licensed
                {{ $labels.resource }} ({{ with printf
                "pbxware_license_in_use{job=%q,instance=%q,system=%q,resource=%q}" .Labels.job
                .Labels.instance .Labels.system .Labels.resource | query }}{{ with first . }}{{ value . }}{{
                end }}{{ end }} of {{ with printf
                "pbxware_license_limit{job=%q,instance=%q,system=%q,resource=%q}" .Labels.job
                .Labels.instance .Labels.system .Labels.resource | query }}{{ with first . }}{{ value . }}{{
                end }}{{ end }}; threshold 90%). No more can be added once the limit is reached.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarelicensenearlyexhausted',
            },
          },
          {
            alert: 'PbxwareCallsNearChannelLimit',
            expr: 'pbxware_system:calls_per_channel:ratio > %(channelsWarningRatio)s' % $._config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware calls are close to the licensed channel limit',
              description: fold(
                '{{ with printf "pbxware_system:calls_active:sum{job=%q,instance=%q,system=%q}" .Labels.job .Labels.instance .Labels.system | query }}{{ with first . }}{{ value . }}{{ end }}{{ end }}' +
                ' calls are active on PBXware system {{ $labels.system }}, {{ $value | humanizePercentage }} of its' +
                ' {{ with printf "pbxware_license_limit{job=%q,instance=%q,system=%q,resource=\\"channels\\"}" .Labels.job .Labels.instance .Labels.system | query }}{{ with first . }}{{ value . }} {{ end }}{{ end }}licensed' +
                ' channels (threshold %s), for 5 minutes. Calls beyond the limit are refused.' % pct($._config.channelsWarningRatio)
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecallsnearchannellimit',
            },
          },
          // The symptom tier: at (nearly) every licensed channel, new calls are being refused now.
          // Short `for:` because customers already feel it.
          {
            alert: 'PbxwareCallsAtChannelLimit',
            expr: 'pbxware_system:calls_per_channel:ratio >= %(channelsCriticalRatio)s' % $._config,
            'for': '2m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'PBXware calls are at the licensed channel limit',
              description: fold(
                '{{ with printf "pbxware_system:calls_active:sum{job=%q,instance=%q,system=%q}" .Labels.job .Labels.instance .Labels.system | query }}{{ with first . }}{{ value . }}{{ end }}{{ end }}' +
                ' calls are active on PBXware system {{ $labels.system }}, {{ $value | humanizePercentage }} of its' +
                ' licensed channels (threshold %s), for 2 minutes: new calls of every tenant on it are being refused.' % pct($._config.channelsCriticalRatio)
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecallsatchannellimit',
            },
          },
          // --- health collectors: trunks ----------------------------------------------------------
          // Trunks are often disabled on purpose (a spare, an old carrier): a warning after 30
          // minutes, silenced for good per trunk as the runbook says.
          {
            alert: 'PbxwareTrunkDisabled',
            expr: 'pbxware_trunk_enabled{%(pbxwareSelector)s} == 0' % $._config,
            'for': '30m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PBXware trunk is disabled',
              description: fold(|||
                Trunk {{ $labels.name }} (id {{ $labels.trunk }}, provider {{ $labels.provider }}) on
                PBXware system {{ $labels.system }} has been disabled for 30 minutes. Calls routed only over
                it fail. If it is disabled on purpose, silence this alert for this trunk.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwaretrunkdisabled',
            },
          },
          // --- health collectors: archiving (tenant = the tenant CODE here) -------------------------
          {
            alert: 'PbxwareArchivingFailed',
            expr: 'pbxware_archiving_last_run_success{%(pbxwareSelector)s} == 0' % $._config,
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The last PBXware archiving run of a tenant failed',
              description: fold(|||
                The latest archiving run of tenant code {{ $labels.tenant }}{{ with printf
                "pbxware_tenant_info{job=%q,instance=%q,system=%q,code=%q}" .Labels.job .Labels.instance
                .Labels.system .Labels.tenant | query }}{{ with first . }} ({{ label "name" . }}, tenant id
                {{ label "tenant" . }}){{ end }}{{ end }} on PBXware system {{ $labels.system }}{{ with
                printf
                "pbxware_archiving_last_run_timestamp_seconds{job=%q,instance=%q,system=%q,tenant=%q}"
                .Labels.job .Labels.instance .Labels.system .Labels.tenant | query }}{{ with first . }}, at
                {{ value . | humanizeTimestamp }},{{ end }}{{ end }} failed or only partly succeeded. Call
                recordings, faxes or voicemail it should have archived may be lost.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarearchivingfailed',
            },
          },
          // Failed or partial runs counted in the last 12 hours, for a tenant whose latest run
          // succeeded (PbxwareArchivingFailed covers the other case): a failure a later run hid. A
          // series seen for the first time (its first failure) has no increase() yet, hence the
          // "unless … offset 12h" part.
          {
            alert: 'PbxwareArchivingRunsFailed',
            expr: |||
              sum without (status) (
                  (increase(pbxware_archiving_runs_total{%(pbxwareSelector)s, status=~"failure|partial"}[12h]) > 0)
                or
                  (
                    pbxware_archiving_runs_total{%(pbxwareSelector)s, status=~"failure|partial"}
                    unless
                    pbxware_archiving_runs_total{%(pbxwareSelector)s, status=~"failure|partial"} offset 12h
                  )
              )
              unless on (job, instance, system, tenant)
              pbxware_archiving_last_run_success{%(pbxwareSelector)s} == 0
            ||| % $._config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PBXware archiving runs of a tenant failed',
              description: fold(|||
                Tenant code {{ $labels.tenant }}{{ with printf
                "pbxware_tenant_info{job=%q,instance=%q,system=%q,code=%q}" .Labels.job .Labels.instance
                .Labels.system .Labels.tenant | query }}{{ with first . }} ({{ label "name" . }}, tenant id
                {{ label "tenant" . }}){{ end }}{{ end }} on PBXware system {{ $labels.system }} had about
                {{ $value | humanize }} failed or partial archiving runs in the last 12 hours, although its
                latest run succeeded. Recordings of the failed runs may not have been archived.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarearchivingrunsfailed',
            },
          },
          // --- calls from CDRs (cdr.enabled) ---------------------------------------------------
          // --- call symptoms from CDRs (cdr.enabled) ---------------------------------------------
          // What customers feel. The CDR counters move once per cdr.interval (default 5m), so the
          // windows are 30m or more. Comparisons with last week use `offset 1w` and match without
          // `instance` (a system may have moved to another replica since); they stay quiet until
          // Prometheus holds a week of data. "Failed" is PBXware's FAILED status (the call could not
          // be set up: trunk, route, codec, network); busy and no answer are the callee's doing.
          //
          // A tenant's calls in one direction fail: more than callsFailedRatio of them over
          // callsWindow, with at least callsFailedMinCount calls in it.
          {
            alert: 'PbxwareCallsFailing',
            expr: |||
              (
                  sum without (disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s, disposition="failed"}[%(callsWindow)s]))
                /
                  sum without (disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s}[%(callsWindow)s]))
              ) > %(callsFailedRatio)s
              and
              sum without (disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s}[%(callsWindow)s])) >= %(callsFailedMinCount)s
            ||| % $._config,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Calls of a PBXware tenant are failing',
              description: fold(
                '{{ $value | humanizePercentage }} of the {{ $labels.direction }} calls of tenant {{ $labels.tenant }}' + tenantName + ' ' + |||
                  on PBXware system {{ $labels.system }} failed over the last %s (threshold %s, at least
                  %s calls): callers hear an error or nothing.
                ||| % [$._config.callsWindow, pct($._config.callsFailedRatio), $._config.callsFailedMinCount]
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecallsfailing',
            },
          },
          // No call record at all for callsStoppedWindow where the same window a week ago had at least
          // callsStoppedMinLastWeek calls — only while the tenant's CDRs are being fetched (fresh
          // watermark): stale CDRs are PbxwareCdrPollsStale, not a silent tenant.
          {
            alert: 'PbxwareCallsStopped',
            expr: |||
              sum without (direction, disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s}[%(callsStoppedWindow)s])) == 0
              and on (job, system, tenant)
              sum by (job, system, tenant) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s}[%(callsStoppedWindow)s] offset 1w)) >= %(callsStoppedMinLastWeek)s
              and on (job, instance, system, tenant)
              (
                  time() - pbxware_cdr_polled_until_timestamp_seconds{%(pbxwareSelector)s}
                < on (job, instance, system) group_left ()
                  3 * pbxware_cdr_poll_interval_seconds{%(pbxwareSelector)s}
              )
            ||| % $._config,
            'for': '10m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A PBXware tenant has no calls where it normally has many',
              description: fold(
                'Tenant {{ $labels.tenant }}' + tenantName + ' ' + |||
                  on PBXware system {{ $labels.system }} has had no call for %s, while the same %s a
                  week ago had
                ||| % [$._config.callsStoppedWindow, $._config.callsStoppedWindow] +
                ' {{ with printf "sum(increase(pbxware_cdr_calls_total{job=%q,system=%q,tenant=%q}[' + $._config.callsStoppedWindow + '] offset 1w))" .Labels.job .Labels.system .Labels.tenant | query }}{{ with first . }}{{ value . | humanize }}{{ end }}{{ end }}' +
                ' calls. Its CDRs are being fetched, so calls are not reaching or leaving it: trunk, routing, DIDs or its phones.'
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecallsstopped',
            },
          },
          // Toll fraud: a tenant's outbound calls (signal="calls") or their cost (signal="cost", from
          // the CDRs' Rating Cost) over fraudWindow are more than fraudFactor times the same window a
          // week ago, and above a floor (fraudMinCalls calls, fraudMinCost in the PBX's currency).
          // Critical: a hijacked extension dialling premium numbers costs money by the minute.
          {
            alert: 'PbxwareOutboundCallsUnusual',
            expr: |||
              label_replace(
                (
                    sum without (disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s, direction="outbound"}[%(fraudWindow)s]))
                  > on (job, system, tenant, direction) group_left ()
                    %(fraudFactor)s * sum by (job, system, tenant, direction) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s, direction="outbound"}[%(fraudWindow)s] offset 1w))
                ) >= %(fraudMinCalls)s,
                "signal", "calls", "", ""
              )
              or
              label_replace(
                (
                    increase(pbxware_cdr_cost_total{%(pbxwareSelector)s, direction="outbound"}[%(fraudWindow)s])
                  > on (job, system, tenant, direction) group_left ()
                    %(fraudFactor)s * sum by (job, system, tenant, direction) (increase(pbxware_cdr_cost_total{%(pbxwareSelector)s, direction="outbound"}[%(fraudWindow)s] offset 1w))
                ) >= %(fraudMinCost)s,
                "signal", "cost", "", ""
              )
            ||| % $._config,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Unusual outbound calls of a PBXware tenant (possible toll fraud)',
              description: fold(
                'The outbound {{ if eq $labels.signal "cost" }}call cost{{ else }}calls{{ end }} of tenant {{ $labels.tenant }}' + tenantName + ' ' + |||
                  on PBXware system {{ $labels.system }} reached {{ $value | humanize }} in the last %s,
                  more than %s times the same hour a week ago
                ||| % [$._config.fraudWindow, $._config.fraudFactor] +
                ' ({{ if eq $labels.signal "cost" }}{{ with printf "sum(increase(pbxware_cdr_cost_total{job=%q,system=%q,tenant=%q,direction=\\"outbound\\"}[' + $._config.fraudWindow + '] offset 1w))" .Labels.job .Labels.system .Labels.tenant | query }}{{ with first . }}{{ value . | humanize }}{{ end }}{{ end }}' +
                '{{ else }}{{ with printf "sum(increase(pbxware_cdr_calls_total{job=%q,system=%q,tenant=%q,direction=\\"outbound\\"}[' + $._config.fraudWindow + '] offset 1w))" .Labels.job .Labels.system .Labels.tenant | query }}{{ with first . }}{{ value . | humanize }}{{ end }}{{ end }}{{ end }}).' +
                ' A hijacked extension or trunk may be dialling premium or international numbers.'
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwareoutboundcallsunusual',
            },
          },
          // Answer-seizure ratio of a tenant in one direction far below its own ASR of the same hour
          // last week (answerRatioFactor times it), with at least answerRatioMinCalls calls now and a
          // week ago. Against the tenant's own history, not a fixed ratio: 45% answered outbound calls
          // are normal for a sales team. A warning: PbxwareCallsFailing and PbxwareCallsStopped page.
          {
            alert: 'PbxwareCallAnswerRatioLow',
            expr: |||
              (
                  sum without (disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s, disposition="answered"}[%(callsWindow)s]))
                /
                  sum without (disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s}[%(callsWindow)s]))
              )
              < on (job, system, tenant, direction) group_left ()
              %(answerRatioFactor)s * (
                  sum by (job, system, tenant, direction) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s, disposition="answered"}[1h] offset 1w))
                /
                  (sum by (job, system, tenant, direction) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s}[1h] offset 1w)) >= %(answerRatioMinCalls)s)
              )
              and
              sum without (disposition) (increase(pbxware_cdr_calls_total{%(pbxwareSelector)s}[%(callsWindow)s])) >= %(answerRatioMinCalls)s
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Far fewer calls of a PBXware tenant are answered than last week',
              description: fold(
                'Only {{ $value | humanizePercentage }} of the {{ $labels.direction }} calls of tenant {{ $labels.tenant }}' + tenantName + ' ' + |||
                  on PBXware system {{ $labels.system }} were answered in the last %s, against
                ||| % $._config.callsWindow +
                ' {{ with printf "sum(increase(pbxware_cdr_calls_total{job=%q,system=%q,tenant=%q,direction=%q,disposition=\\"answered\\"}[1h] offset 1w)) / sum(increase(pbxware_cdr_calls_total{job=%q,system=%q,tenant=%q,direction=%q}[1h] offset 1w))" .Labels.job .Labels.system .Labels.tenant .Labels.direction .Labels.job .Labels.system .Labels.tenant .Labels.direction | query }}{{ with first . }}{{ value . | humanizePercentage }}{{ end }}{{ end }}' +
                ' in the same hour last week. Callers get no answer, a busy signal or a failure.'
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecallanswerratiolow',
            },
          },
          // Call quality: the median MOS (mean opinion score, 1–5) of a tenant's calls that carry one,
          // over the last hour, below callQualityMedianMos, with at least callQualityMinCalls scored
          // calls. From the pbxware_cdr_call_mos histogram (buckets 1, 2, 2.5, 3, 3.5, 4, 4.3, 5):
          // 3.5 is where users start to complain, 4.3 is toll quality.
          {
            alert: 'PbxwareCallQualityLow',
            expr: |||
              histogram_quantile(0.5, pbxware:cdr_call_mos_bucket:rate1h)
                < %(callQualityMedianMos)s
              and on (job, instance, system, tenant)
              increase(pbxware_cdr_call_mos_count{%(pbxwareSelector)s}[1h]) >= %(callQualityMinCalls)s
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Call quality of a PBXware tenant is poor',
              description: fold(
                'The median MOS of the calls of tenant {{ $labels.tenant }}' + tenantName + ' ' + |||
                  on PBXware system {{ $labels.system }} over the last hour is {{ $value | printf "%%.2f" }}
                  (threshold %s, 1 = bad, 5 = excellent): callers hear choppy or delayed audio.
                ||| % $._config.callQualityMedianMos
              ),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecallqualitylow',
            },
          },
          // The CDR watermark of a tenant (every record dated up to it was fetched) stopped moving:
          // its CDR requests fail, so the call counters stand still. A tenant whose CDRs were never
          // fetched has no watermark; PbxwarePollErrorsHigh covers it.
          {
            alert: 'PbxwareCdrPollsStale',
            expr: |||
              time() - pbxware_cdr_polled_until_timestamp_seconds{%(pbxwareSelector)s}
                > on (job, instance, system) group_left ()
              3 * pbxware_cdr_poll_interval_seconds{%(pbxwareSelector)s}
            ||| % $._config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'CDRs of a PBXware tenant are no longer fetched',
              description: fold(|||
                The CDRs of tenant {{ $labels.tenant }} on PBXware system {{ $labels.system }} were last
                fetched completely {{ $value | humanizeDuration }} ago, more than three CDR intervals. Its
                call counters stand still until the requests succeed again; no record is lost while the
                exporter keeps running.
              |||),
              runbook_url: $._config.runbookURLPattern % 'pbxwarecdrpollsstale',
            },
          },
        ],
      },
    ],
  },
}
