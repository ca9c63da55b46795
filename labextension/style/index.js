import './base.css';
import './jobs.css';
import './mlflow.css';
