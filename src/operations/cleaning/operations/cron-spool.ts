import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "cron-spool",
  description:
    "Remove users' cron and at jobs (the spool folders and at's .SEQ counter stay, so cron and at keep working)",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    // virt-sysprep removes /var/spool/cron/* whole, which on Debian takes the crontabs folder (mode 1730,
    // group crontab) with it, and `crontab -e` then fails; only the jobs go here.
    const jobs: string[] = [];
    for (const top of ["/var/spool/cron", "/var/spool/at", "/var/spool/atjobs", "/var/spool/atspool"])
      await ctx.walk(top, async (path) => {
        if (!path.endsWith("/.SEQ")) jobs.push(path);
      });
    for (const path of jobs) await ctx.remove(path);
  },
});
