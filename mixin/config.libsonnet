// Everything a deployment may want to change. Override in your own jsonnet:
//
//   (import 'pbxware-exporter/mixin/mixin.libsonnet') + {
//     _config+:: { pbxwareSelector: 'job="pbx-exporter"' },
//   }
//
// then render with scripts/gen-mixin (see mixin/README.md).
{
  _config+:: {
    // Selects the exporter's own series in every rule. Rules that read recording rules need
    // none: recorded series keep the job label of what they were computed from.
    pbxwareSelector: 'job="pbxware"',
    // The scrape job(s) the dashboards' `job` variable offers.
    dashboardJobSelector: self.pbxwareSelector,

    // %s is the alert name in lower case, the anchor of its section in alerts/runbooks.md.
    runbookURLPattern: 'https://github.com/pbxware-exporter/pbxware-exporter/blob/main/alerts/runbooks.md#%s',

    // --- symptoms: calls (CDRs) ----------------------------------------------------------
    // PbxwareCallsFailing: share of a tenant's calls in one direction that fail (disposition
    // failed or congestion) over callsWindow, with at least callsMinCount calls.
    callsWindow: '30m',
    callsFailedRatio: 0.3,
    callsFailedMinCount: 10,
    // PbxwareCallsStopped: no call in callsStoppedWindow where the same window a week ago had
    // at least callsStoppedMinLastWeek calls.
    callsStoppedWindow: '30m',
    callsStoppedMinLastWeek: 20,
    // PbxwareOutboundCallsUnusual (toll fraud): outbound calls or cost of a tenant over
    // fraudWindow at least fraudFactor times the same hour last week, and above a floor.
    fraudWindow: '1h',
    fraudFactor: 5,
    fraudMinCalls: 30,
    fraudMinCost: 20,
    // PbxwareCallAnswerRatioLow: ASR of a tenant and direction below answerRatioFactor times
    // its own ASR of the same hour last week, with at least answerRatioMinCalls calls.
    answerRatioFactor: 0.6,
    answerRatioMinCalls: 20,
    // PbxwareCallQualityLow: median MOS of a tenant below callQualityMedianMos.
    callQualityMedianMos: 3.5,
    callQualityMinCalls: 10,
    // Active calls ÷ licensed channels.
    channelsWarningRatio: 0.8,
    channelsCriticalRatio: 0.95,

    // --- the PBX host ------------------------------------------------------------------------
    cpuHighRatio: 0.9,
    memoryHighRatio: 0.9,
    diskAlmostFullRatio: 0.95,

    // --- polling ---------------------------------------------------------------------------
    pollErrorsRatio: 0.1,
    // PbxwareAllExtensionsOffline only for tenants with this many enabled extensions.
    allOfflineMinEnabled: 3,

    // --- dashboards ------------------------------------------------------------------------
    dashboardTags: ['pbxware'],
    // Provisioned dashboards are read-only in Grafana; edit the mixin instead.
    dashboardEditable: false,
    dashboardRefresh: '1m',
    dashboardTimezone: 'browser',
  },
}
