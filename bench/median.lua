-- The median of a list of numbers (the list is left as it was): what every benchmark reports
-- of its rounds, so that one slow round moves nothing.
return function(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local m = #t
  if m % 2 == 1 then return t[(m + 1) / 2] end
  return (t[m / 2] + t[m / 2 + 1]) / 2
end
