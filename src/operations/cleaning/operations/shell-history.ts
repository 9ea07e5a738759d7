import { defineOperation } from "../cleaning-operation.js";

/**
 * Histories virt-sysprep leaves (it knows bash and zsh only): other shells' and interactive tools' per-user
 * history files, which hold typed commands, queries and sometimes passwords.
 */
export const HISTORY_FILES = [
  ".history",
  ".sh_history",
  ".ash_history",
  ".ksh_history",
  ".mksh_history",
  ".local/share/fish/fish_history",
  ".config/fish/fish_history",
  ".python_history",
  ".node_repl_history",
  ".irb_history",
  ".mysql_history",
  ".mariadb_history",
  ".psql_history",
  ".sqlite_history",
  ".rediscli_history",
  ".lesshst",
  ".viminfo",
  ".local/share/nano/search_history",
] as const;

export default defineOperation({
  name: "shell-history",
  description: "Remove every other shell's and tool's history (fish, sh/ash/ksh, python, mysql, psql, less, vim…)",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    for (const home of await ctx.homes({ includeServiceAccounts: true }))
      for (const name of HISTORY_FILES) await ctx.remove(`${home}/${name}`);
  },
});
