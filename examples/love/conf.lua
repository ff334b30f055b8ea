-- LÖVE 11: the window of examples/love, and no audio (a call list makes no sound, and a headless
-- machine may have no audio device).
function love.conf(t)
  t.identity = "ravan-calls"
  t.version = "11.0"
  t.window.title = "ravan: calls as they arrive"
  t.window.width = 800
  t.window.height = 480
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
end
