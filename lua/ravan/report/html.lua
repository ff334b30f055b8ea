-- The HTML report: one self-contained page (inline CSS and SVG, no script,
-- no font or image from anywhere; its Content-Security-Policy forbids
-- loading any), readable on a phone and printable. Every number a chart
-- draws is in a data-value attribute, as the exact text the tables print,
-- so a check can add a chart up and compare it with the table.

local number_string = require("ravan.json").number_string
local report_columns = require("ravan.report").columns

local M = {}

local format, concat, floor = string.format, table.concat, math.floor
local tonumber, tostring, ipairs = tonumber, tostring, ipairs

local PALETTE = { "#3b6fd4", "#e0833a", "#3aa57a", "#b5539f", "#c9a227", "#5c6b7a", "#d0453f", "#7a5cc2" }

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function esc(s)
  return (tostring(s):gsub("[&<>\"']", ESCAPES))
end

-- A label cut to `n` characters (UTF-8 aware), with an ellipsis when cut.
local function short(label, n)
  local chars = {}
  for c in label:gmatch("[^\128-\191][\128-\191]*") do
    chars[#chars + 1] = c
    if #chars > n then
      chars[n] = "…"
      chars[n + 1] = nil
      return concat(chars)
    end
  end
  return label
end

-- Axis ticks: a step of 1, 2 or 5 times a power of ten, about four of them.
local function ticks(max)
  if max ~= max or max <= 0 then return { 0, 1 }, 1 end
  if max > 1e300 then return { 0, max }, max end
  local raw = max / 4
  local mag = 10 ^ floor(math.log(raw) / math.log(10))
  local step = mag
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * mag >= raw then
      step = m * mag
      break
    end
  end
  local list, v = {}, 0
  repeat
    list[#list + 1] = v
    v = v + step
  until v > max + step * 0.999
  return list, list[#list]
end

-- A value as a chart draws it: a bar's length cannot be negative or infinite.
local function drawn(text)
  local v = tonumber(text) or 0
  if not (v > 0 and v < math.huge) then return 0 end
  return v
end

local function num_label(v)
  if v == floor(v) then return format("%.0f", v) end
  return (format("%.2f", v):gsub("0+$", ""):gsub("%.$", ""))
end

local W, H = 480, 250
local PAD_L, PAD_R, PAD_T, PAD_B = 50, 8, 12, 62

local PLOT_W, PLOT_H = W - PAD_L - PAD_R, H - PAD_T - PAD_B

-- A chart's figure up to its plot: caption, legend (for more than one
-- series: { name, title, colour }), the SVG and its y axis up to `max`
-- over `n` slots. Returns the parts so far, the axis' top and the slot width.
local function frame(id, title, series, max, n, unit)
  local marks, top = ticks(max)
  local out = { format('<figure class="chart" data-chart="%s"><figcaption>%s</figcaption>', id, esc(title)) }
  if #series > 1 then
    out[#out + 1] = '<ul class="legend">'
    for _, s in ipairs(series) do
      out[#out + 1] = format('<li><span style="background:%s"></span>%s</li>', s[3], esc(s[2]))
    end
    out[#out + 1] = "</ul>"
  end
  out[#out + 1] = format('<svg viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, esc(title))
  for _, t in ipairs(marks) do
    local y = PAD_T + PLOT_H - t / top * PLOT_H
    out[#out + 1] = format('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>'
      .. '<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>',
      PAD_L, W - PAD_R, y, y, PAD_L - 6, y + 4, esc(num_label(t) .. (unit or "")))
  end
  return out, top, PLOT_W / math.max(n, 1)
end

-- The label of the i-th of n slots, centred at x: every one up to 8 slots,
-- else as many as fit.
local function x_label(out, i, n, x, label)
  if (i - 1) % math.max(1, math.ceil(n / 8)) ~= 0 then return end
  local y = H - PAD_B + 14
  out[#out + 1] = format('<text class="axis" x="%.1f" y="%d" text-anchor="end" '
    .. 'transform="rotate(-35 %.1f %d)">%s</text>', x, y, x, y, esc(short(label, 14)))
end

-- Vertical bars, stacked by series. `cats`: { label, values = { series ->
-- decimal text } }; `series`: { name, title } (a colour is added).
local function bar_chart(id, title, cats, series, unit)
  local max = 0
  for _, c in ipairs(cats) do
    local sum = 0
    for _, s in ipairs(series) do sum = sum + drawn(c.values[s[1]]) end
    if sum > max then max = sum end
  end
  for i, s in ipairs(series) do s[3] = PALETTE[(i - 1) % #PALETTE + 1] end
  local out, top, slot = frame(id, title, series, max, #cats, unit)
  local bw = math.max(slot * 0.72, 1)
  for i, c in ipairs(cats) do
    local x = PAD_L + (i - 1) * slot + (slot - bw) / 2
    local base = PAD_T + PLOT_H
    for _, s in ipairs(series) do
      local text = c.values[s[1]] or "0"
      local v = drawn(text)
      local h = v / top * PLOT_H
      base = base - h
      out[#out + 1] = format('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" '
        .. 'data-series="%s" data-key="%s" data-value="%s"><title>%s %s: %s</title></rect>',
        x, base, bw, h, s[3], esc(s[1]), esc(c.label), esc(text),
        esc(c.label), esc(s[2]), esc(text))
    end
    x_label(out, i, #cats, x + bw / 2, c.label)
  end
  out[#out + 1] = "</svg></figure>"
  return concat(out)
end

-- Horizontal bars, one per item: { label, value (text) }, longest first.
local function hbar_chart(id, title, items, unit)
  local max = 0
  for _, it in ipairs(items) do max = math.max(max, drawn(it.value)) end
  local row, label_w = 28, 170
  local h = #items * row + 8
  local out = { format('<figure class="chart" data-chart="%s"><figcaption>%s</figcaption>', id, esc(title)),
    format('<svg viewBox="0 0 %d %d" role="img" aria-label="%s">', W, h, esc(title)) }
  local avail = W - label_w - 70
  for i, it in ipairs(items) do
    local y = 4 + (i - 1) * row
    local v = drawn(it.value)
    local bw = max > 0 and v / max * avail or 0
    local label = it.label
    out[#out + 1] = format('<text class="label" x="%d" y="%d" text-anchor="end">%s</text>'
      .. '<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" data-key="%s" data-value="%s">'
      .. '<title>%s: %s</title></rect><text class="value" x="%.1f" y="%d">%s</text>',
      label_w - 8, y + 17, esc(short(label, 18)), label_w, y + 4,
      bw, row - 8, PALETTE[(i - 1) % #PALETTE + 1], esc(label), esc(it.value), esc(label),
      esc(it.value), label_w + bw + 6, y + 17, esc(it.value .. (unit or "")))
  end
  out[#out + 1] = "</svg></figure>"
  return concat(out)
end

-- p50 and p95 latency per day, as two lines with a point per day.
local function latency_chart(days)
  local max, pts = 0, {}
  for i, d in ipairs(days) do
    local l = d.latency_ms
    if l.p95 then max = math.max(max, l.p95) end
    pts[i] = l
  end
  local SERIES = { { "p50", "p50", PALETTE[1] }, { "p95", "p95", PALETTE[2] } }
  local out, top, slot = frame("latency", "Latency per day (ms)", SERIES, max, #days)
  for _, s in ipairs(SERIES) do
    local line, dots = {}, {}
    for i, d in ipairs(days) do
      local v = pts[i][s[1]]
      if v then
        local x, y = PAD_L + (i - 0.5) * slot, PAD_T + PLOT_H - v / top * PLOT_H
        line[#line + 1] = format("%.1f,%.1f", x, y)
        dots[#dots + 1] = format('<circle cx="%.1f" cy="%.1f" r="3" fill="%s" data-series="%s" '
          .. 'data-key="%s" data-value="%s"><title>%s %s: %s ms</title></circle>', x, y, s[3], s[1],
          esc(d.key.day), esc(number_string(v)), esc(d.key.day), s[1],
          esc(number_string(v)))
      end
    end
    out[#out + 1] = format('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>',
      s[3], concat(line, " "))
    out[#out + 1] = concat(dots)
  end
  for i, d in ipairs(days) do x_label(out, i, #days, PAD_L + (i - 0.5) * slot, d.key.day) end
  out[#out + 1] = "</svg></figure>"
  return concat(out)
end

-- A table of groups with the report's columns and a total row; each cell
-- names its column in data-col, the total row is data-total.
local function table_of(id, title, rep, groups)
  local cols = report_columns(rep)
  local out = { format('<section class="table"><h2>%s</h2><div class="scroll">'
    .. '<table data-table="%s"><thead><tr>', esc(title), id) }
  for _, c in ipairs(cols) do
    out[#out + 1] = format('<th%s>%s</th>', c.dimension and "" or ' class="n"', esc((c[1]:gsub("_", " "))))
  end
  out[#out + 1] = "</tr></thead><tbody>"
  local function row(g, total)
    out[#out + 1] = total and '<tr data-total="1">' or "<tr>"
    for i, c in ipairs(cols) do
      local v = c[2](g) or ""
      if total and c.dimension then v = i == 1 and "Total" or "" end
      out[#out + 1] = format('<td%s data-col="%s">%s</td>', c.dimension and "" or ' class="n"',
        esc(c[1]), esc(v))
    end
    out[#out + 1] = "</tr>"
  end
  for _, g in ipairs(groups) do row(g) end
  out[#out + 1] = "</tbody><tfoot>"
  row(rep.total, true)
  out[#out + 1] = "</tfoot></table></div></section>"
  return concat(out)
end

local CSS = [[
:root{color-scheme:light;--ink:#1d2330;--muted:#5d6675;--line:#e3e6ec;--card:#fff;--bg:#f4f6f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:16px}
header h1{font-size:1.5rem;margin:.2rem 0}
header p{color:var(--muted);margin:.2rem 0 1rem}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin-bottom:14px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 12px}
.tile b{display:block;font-size:1.35rem;font-variant-numeric:tabular-nums}
.tile span{color:var(--muted);font-size:.82rem}
.grid2{display:grid;align-items:start;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));gap:14px}
.chart,.table{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px;margin:0 0 14px}
figcaption,h2{font-weight:600;font-size:1rem;margin:0 0 6px}
svg{width:100%;height:auto;display:block}
.grid{stroke:var(--line)}
.axis{font-size:12px;fill:var(--muted)}
.label{font-size:14px;fill:var(--ink)}
.value{font-size:13px;fill:var(--muted)}
.legend{list-style:none;margin:0 0 4px;padding:0;display:flex;flex-wrap:wrap;gap:12px;font-size:.82rem;color:var(--muted)}
.legend span{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.82rem;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th.n,td.n{text-align:right}
tfoot td{font-weight:600;border-top:2px solid var(--ink)}
.empty{color:var(--muted)}
@media print{body{background:#fff;font-size:11px}main{max-width:none;padding:0}
.chart,.table,.tile{break-inside:avoid;border-color:#bbb}.scroll{overflow:visible}}
]]

local function credit_title(name)
  return (name:gsub("_credits$", ""):gsub("_", " "))
end

--- The report (from `ravan.report{ ..., charts = true }`) as an HTML page.
function M.render(rep)
  local total, charts = rep.total, rep.charts or {}
  local days, agents = charts.day or {}, charts.agent or {}
  local range = {}
  if days[1] then range[1] = days[1].key.day .. " to " .. days[#days].key.day end
  if rep.since then range[#range + 1] = "since " .. rep.since end
  if rep["until"] then range[#range + 1] = "until " .. rep["until"] end
  local out = {
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    [[<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">]],
    "<title>Call cost report</title><style>", CSS, "</style></head><body><main>",
    format("<header><h1>Call cost report</h1><p>%s</p></header>",
      esc(#range > 0 and concat(range, ", ") or "no calls")),
    '<section class="tiles">',
  }
  local function tile(label, value, col)
    out[#out + 1] = format('<div class="tile" data-tile="%s"><b>%s</b><span>%s</span></div>', col,
      esc(value), esc(label))
  end
  tile("calls", tostring(total.calls), "calls")
  tile("minutes", total.minutes, "minutes")
  tile("cost total", total.cost_total, "cost_total")
  local function pair(t, a, b)
    return (t[a] and number_string(t[a]) or "-") .. " / " .. (t[b] and number_string(t[b]) or "-")
  end
  tile("latency p50 / p95 (ms)", pair(total.latency_ms, "p50", "p95"), "latency")
  tile("duration p50 / p90 (s)", pair(total.duration_sec, "p50", "p90"), "duration")
  out[#out + 1] = "</section>"

  local day_cats, call_cats = {}, {}
  for i, d in ipairs(days) do
    local values = {}
    for _, c in ipairs(rep.credits) do values[c] = d.credits[c] end
    day_cats[i] = { label = d.key.day, values = values }
    call_cats[i] = { label = d.key.day, values = { calls = tostring(d.calls) } }
  end
  local series = {}
  for i, c in ipairs(rep.credits) do series[i] = { c, credit_title(c) } end
  out[#out + 1] = '<div class="grid2">'
  out[#out + 1] = bar_chart("calls-per-day", "Calls per day", call_cats, { { "calls", "calls" } })
  out[#out + 1] = bar_chart("credits-per-day", "Cost per day, by credit type", day_cats, series)
  local agent_items = {}
  for i, a in ipairs(agents) do agent_items[i] = { label = a.key.agent, value = a.cost_total } end
  table.sort(agent_items, function(a, b)
    local ta, tb = tonumber(a.value) or 0, tonumber(b.value) or 0
    if ta ~= tb then return ta > tb end
    return a.label < b.label
  end)
  out[#out + 1] = hbar_chart("cost-per-agent", "Cost per agent (cost_total)", agent_items)
  local bins = {}
  for i, b in ipairs(total.histogram) do bins[i] = { label = b.label, values = { calls = tostring(b.calls) } } end
  out[#out + 1] = bar_chart("duration-histogram", "Call durations (calls)", bins, { { "calls", "calls" } })
  out[#out + 1] = latency_chart(days)
  local reasons = {}
  for i, r in ipairs(total.disconnect_reasons) do reasons[i] = { label = r.name, value = tostring(r.calls) } end
  out[#out + 1] = hbar_chart("disconnect-reasons", "Disconnect reasons (calls)", reasons)
  if #total.sentiment > 0 then
    local items = {}
    for i, s in ipairs(total.sentiment) do items[i] = { label = s.name, value = tostring(s.calls) } end
    out[#out + 1] = hbar_chart("sentiment", "Sentiment (post-call analysis)", items)
  else
    out[#out + 1] = '<figure class="chart"><figcaption>Sentiment</figcaption><p class="empty">'
      .. "No call has a sentiment in post_call_analysis_result.</p></figure>"
  end
  out[#out + 1] = "</div>"

  local by_day = { by = { "day" }, credits = rep.credits, total = total }
  out[#out + 1] = table_of("day", "By day", by_day, days)
  out[#out + 1] = table_of("agent", "By agent", { by = { "agent" }, credits = rep.credits, total = total }, agents)
  if #rep.by > 0 then
    out[#out + 1] = table_of("groups", "By " .. concat(rep.by, " and "), rep, rep.groups)
  end
  if total.invalid > 0 then
    out[#out + 1] = format('<p class="empty">%d money values were not decimals and are left out of the sums.</p>',
      total.invalid)
  end
  out[#out + 1] = "</main></body></html>\n"
  return concat(out)
end

return M
