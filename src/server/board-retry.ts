// bull-board's Retry buttons on the instance queues do what `mcb jobs retry` does. Its own retry calls BullMQ's
// Job.retry, which puts a failed stage back to wait but leaves the stages after it failed (fail-parent-on-failure):
// the stage would run and the chain would stop there, the row never reaching Completed. These routes are mounted in
// front of bull-board's router and answer its retry requests with retryJob / retryAllFailed (src/queues/admin.ts);
// what they do not handle (other queues, unknown jobs, a completed job that is no backup stage) falls through to
// bull-board. A refusal is answered as bull-board's UI shows it: `error` is the toast's title, `message` its text.
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Job } from 'bullmq';
import type { Logger } from '../log/index.ts';
import { fullStages } from '../metadata/index.ts';
import { JobNotFoundError, retryAllFailed, RetryRefusedError, retryJob } from '../queues/admin.ts';
import { instanceIdOfQueue, type Queues } from '../queues/index.ts';

const stageNames = new Set<string>(fullStages);

/** The stage jobs of a full backup's chain (clone → tar → upload → cleanup) carry the stage's name. */
function isBackupStage(job: Job): boolean {
  return stageNames.has(job.name);
}

function refuse(res: Response, status: number, error: string, message: string): void {
  res.status(status).json({ error, message });
}

const completedStageRefusal =
  'a completed backup stage is not run again on its own: its backup has moved on (run `mcb enqueue full` for a new backup; ' +
  'a failed stage is retried with its chain, like `mcb jobs retry`)';

const retryAllCompletedRefusal =
  'retrying every completed job of an instance queue would run finished backup stages again out of their chains; ' +
  'enqueue new jobs with `mcb enqueue` instead (failed jobs: "Retry all" on the failed tab, like `mcb jobs retry --all-failed`)';

/** Routes relative to bull-board's base path (/queues). */
export function boardRetryRouter(queues: Queues, log: Logger): Router {
  const router = Router();

  router.put('/api/queues/:queueName/:jobId/retry', async (req: Request, res: Response, next: NextFunction) => {
    const { queueName, jobId } = req.params as { queueName: string; jobId: string };
    try {
      if (instanceIdOfQueue(queueName) === undefined) return next();
      const job = await queues.queue(queueName).getJob(jobId);
      if (!job) return next();
      const state = await job.getState();
      if (state === 'completed' && isBackupStage(job)) return refuse(res, 400, 'Retry not offered for a completed backup stage', completedStageRefusal);
      if (state !== 'failed') return next();
      const r = await retryJob(queues, job);
      log.info({ event: 'server.job-retried', queue: queueName, jobId, retried: r.retried, rearmed: r.rearmed }, `retried ${r.retried} from bull-board${r.rearmed.length ? `; waiting for it again: ${r.rearmed.join(', ')}` : ''}`);
      res.status(204).end();
    } catch (err) {
      if (err instanceof RetryRefusedError || err instanceof JobNotFoundError) return refuse(res, 409, 'Retry refused', err.message);
      next(err);
    }
  });

  router.put('/api/queues/:queueName/retry/:queueStatus', async (req: Request, res: Response, next: NextFunction) => {
    const { queueName, queueStatus } = req.params as { queueName: string; queueStatus: string };
    try {
      if (instanceIdOfQueue(queueName) === undefined) return next();
      if (queueStatus === 'completed') return refuse(res, 400, 'Retry all not offered for completed jobs', retryAllCompletedRefusal);
      if (queueStatus !== 'failed') return next();
      const { retried, refused } = await retryAllFailed(queues, [queueName]);
      for (const r of retried) log.info({ event: 'server.job-retried', queue: queueName, retried: r.retried, rearmed: r.rearmed }, `retried ${r.retried} from bull-board`);
      for (const f of refused) log.warn({ event: 'server.job-retry-refused', queue: queueName, jobId: f.jobId, reason: f.reason }, `retry of ${f.jobId} refused`);
      res.status(200).json({ retried: retried.length, skipped: refused.length, ...(refused.length ? { refused } : {}) });
    } catch (err) {
      next(err);
    }
  });

  return router;
}
