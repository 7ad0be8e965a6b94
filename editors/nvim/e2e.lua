-- End-to-end test of `writ lsp` in a real editor (Neovim 0.7+, headless).
-- Opens a broken policy, attaches the server, checks the diagnostics it
-- publishes (message, line, column), fixes the file through an edit and
-- checks that the diagnostics clear. Exits non-zero on any failure.
--
--   WRIT=path/to/writ POLICY=copy/of/broken.writ \
--     nvim --headless -u NONE -c "luafile editors/nvim/e2e.lua"

local writ = os.getenv("WRIT") or "writ"
local policy = assert(os.getenv("POLICY"), "set POLICY to a copy of broken.writ")

local function fail(msg)
  io.stderr:write("e2e FAIL: " .. msg .. "\n")
  vim.cmd("cquit 1")
end

local function expect(cond, msg)
  if not cond then fail(msg) end
end

vim.cmd("edit " .. vim.fn.fnameescape(policy))
local buf = vim.api.nvim_get_current_buf()
local client = vim.lsp.start_client({
  name = "writ",
  cmd = { writ, "lsp" },
  root_dir = vim.fn.fnamemodify(policy, ":p:h"),
})
expect(client, "could not start `" .. writ .. " lsp`")
vim.lsp.buf_attach_client(buf, client)

-- The broken file: `rolez` for `roles` on line 4 (0-based 3), column 3
-- (0-based 2); the agent then declares nothing, which is a warning.
local got = vim.wait(15000, function()
  return #vim.diagnostic.get(buf, { severity = vim.diagnostic.severity.ERROR }) > 0
end, 50)
expect(got, "no error diagnostic arrived within 15 s")
local errors = vim.diagnostic.get(buf, { severity = vim.diagnostic.severity.ERROR })
expect(#errors == 1, "expected one error, got " .. #errors)
local d = errors[1]
io.stdout:write(string.format("received: %d:%d %s\n", d.lnum + 1, d.col + 1, d.message:gsub("\n.*", "")))
expect(d.lnum == 3, "error on line " .. (d.lnum + 1) .. ", expected 4")
expect(d.col == 2, "error at column " .. (d.col + 1) .. ", expected 3")
expect(d.message:find("unexpected `rolez`", 1, true), "unexpected message: " .. d.message)
expect(d.message:find("did you mean `roles`", 1, true), "no did-you-mean in: " .. d.message)
local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
expect(code == "E0401", "expected code E0401, got " .. tostring(code))

-- Fix it through an edit (Neovim sends didChange).
vim.api.nvim_buf_set_lines(buf, 3, 4, false, { "  roles [support]" })
local cleared = vim.wait(15000, function()
  return #vim.diagnostic.get(buf) == 0
end, 50)
expect(cleared, "diagnostics did not clear after the fix: " .. vim.inspect(vim.diagnostic.get(buf)))
io.stdout:write("diagnostics cleared after the edit\n")

vim.lsp.stop_client(client)
io.stdout:write("e2e OK\n")
vim.cmd("qall!")
