// What the health check asks of the control plane: that its database
// answers, and that the event log (through which events reach every
// server) can be read.
import type pg from "pg";

export class HealthProbes {
  constructor(private readonly db: pg.Pool) {}

  async database(): Promise<void> {
    await this.db.query("SELECT 1");
  }

  async eventLog(): Promise<void> {
    await this.db.query("SELECT max(id) FROM events");
  }
}
