-- Argo CD health of Conveyor resources (Workflow, Execution, WorkerPool), read from their
-- kstatus conditions, the same ones Flux and `kubectl wait --for=condition=Ready` use:
--   Ready=True                          -> Healthy     (compiled / succeeded / serving)
--   Stalled=True                        -> Degraded    (invalid spec, failed, cancelled)
--   status not yet written or stale     -> Progressing (the operator has not seen it yet)
--   anything else (Reconciling=True)    -> Progressing (pending, running, scaling)
local hs = {status = "Progressing", message = "Waiting for the Conveyor operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Waiting for the operator to handle generation " .. generation
  return hs
end
local ready = nil
local stalled = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Stalled" then stalled = condition end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ready.reason or "Ready"
  return hs
end
if ready ~= nil then
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
end
return hs
